import { describeInternalHealth } from "../../../shared/testing/health";

describeInternalHealth("synthetic-phi");
