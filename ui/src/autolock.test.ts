import { afterEach, describe, expect, it, vi } from "vitest";

import { autolockSeconds, DEFAULT_AUTOLOCK_SECONDS, setAutolockMinutes, startAutolock } from "./autolock";

function memoryStorage(): Storage {
  const items = new Map<string, string>();
  return {
    getItem: (k: string) => items.get(k) ?? null,
    setItem: (k: string, v: string) => void items.set(k, v),
  } as Storage;
}

afterEach(() => {
  vi.useRealTimers();
});

describe("the automatic lock", () => {
  it("defaults to 15 minutes and keeps what people set, within bounds", () => {
    const storage = memoryStorage();
    expect(autolockSeconds(storage)).toBe(DEFAULT_AUTOLOCK_SECONDS);
    setAutolockMinutes(storage, 5);
    expect(autolockSeconds(storage)).toBe(300);
    setAutolockMinutes(storage, 0);
    expect(autolockSeconds(storage)).toBe(60);
    storage.setItem("outpost.autolockSeconds", "nonsense");
    expect(autolockSeconds(storage)).toBe(DEFAULT_AUTOLOCK_SECONDS);
  });

  it("locks once after the idle time, and activity puts it off", () => {
    vi.useFakeTimers();
    let clock = 0;
    const target = new EventTarget();
    const lock = vi.fn();
    startAutolock(target, () => 60, lock, () => clock);
    clock = 50_000;
    vi.advanceTimersByTime(1000);
    target.dispatchEvent(new Event("keydown"));
    clock = 100_000;
    vi.advanceTimersByTime(1000);
    expect(lock).not.toHaveBeenCalled();
    clock = 111_000;
    vi.advanceTimersByTime(1000);
    expect(lock).toHaveBeenCalledTimes(1);
    clock = 500_000;
    vi.advanceTimersByTime(5000);
    expect(lock).toHaveBeenCalledTimes(1);
  });
});
