import { defineConfig } from "prisma/config";
import { schemaConfig } from "../src/config";

export default defineConfig(schemaConfig("media"));
