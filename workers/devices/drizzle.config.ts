import { defineConfig } from "drizzle-kit";

// Run from this folder (drizzle-kit resolves paths against the working directory).
export default defineConfig({
  dialect: "sqlite",
  schema: "./src/db/schema.ts",
  out: "../../migrations/devices",
});
