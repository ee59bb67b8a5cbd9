/**
 * Keeps a test file independent of the developer's or CI's EMAIL_* environment: the
 * variables are removed for the file's tests and put back afterwards.
 */
import { afterAll, beforeAll } from "vitest";
import { ENVIRONMENT_VARIABLES, resetSettings } from "../../src/settings.js";

export function isolateEmailEnvironment(): void {
  const saved = new Map<string, string | undefined>();
  beforeAll(() => {
    for (const name of ENVIRONMENT_VARIABLES) {
      saved.set(name, process.env[name]);
      delete process.env[name];
    }
    resetSettings();
  });
  afterAll(() => {
    for (const [name, value] of saved) if (value !== undefined) process.env[name] = value;
    resetSettings();
  });
}
