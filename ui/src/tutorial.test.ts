import { describe, expect, it } from "vitest";
import { catalogues, isMessageKey } from "./i18n";
import { currentStep, STEP_TARGETS } from "./tutorial";

describe("the tutorial panel", () => {
  it("shows the first step not done, and none when every step is", () => {
    const lesson = (done: boolean[]) => ({
      id: "search",
      steps: done.map((d, i) => ({ id: `s${i}`, done: d })),
      started: true,
      completed: done.every(Boolean),
      available: true,
    });
    expect(currentStep(lesson([false, false]))).toBe(0);
    expect(currentStep(lesson([true, false]))).toBe(1);
    expect(currentStep(lesson([true, true]))).toBe(-1);
  });

  it("explains every step it can point at, in Russian and English", () => {
    for (const step of Object.keys(STEP_TARGETS)) {
      const key = `step.${step}`;
      expect(isMessageKey(key), key).toBe(true);
      if (!isMessageKey(key)) continue;
      expect(catalogues.en[key].length).toBeGreaterThan(10);
      expect(catalogues.ru[key]).toMatch(/[а-яё]/i);
    }
  });
});
