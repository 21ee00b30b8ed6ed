import { buildApp } from "./app";

export { ClientRegistry } from "./client-registry";

export default buildApp();
