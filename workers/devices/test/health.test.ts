import { describeInternalHealth } from "../../../shared/testing/health";

describeInternalHealth("devices");
