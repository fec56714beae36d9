// Automatic lock after idle time: any key, pointer or wheel activity in the window counts; after
// the configured time without any, `lock` is called once. The time is a setting kept in the
// window's storage (default 15 minutes). Presentation only: locking is the engine's.

/** The default idle time before the vault locks, in seconds. */
export const DEFAULT_AUTOLOCK_SECONDS = 15 * 60;
const KEY = "outpost.autolockSeconds";

/** The configured idle time in seconds (a stored value outside 10 s … 24 h falls back). */
export function autolockSeconds(storage: Pick<Storage, "getItem">): number {
  const stored = Number(storage.getItem(KEY));
  return Number.isFinite(stored) && stored >= 10 && stored <= 24 * 3600 ? stored : DEFAULT_AUTOLOCK_SECONDS;
}

/** Stores the idle time, in minutes as people set it. */
export function setAutolockMinutes(storage: Pick<Storage, "setItem">, minutes: number): void {
  const seconds = Math.round(Math.min(Math.max(minutes, 1), 24 * 60) * 60);
  storage.setItem(KEY, String(seconds));
}

/** Watches `target` for activity and calls `lock` after `seconds()` of none; returns `stop`. */
export function startAutolock(
  target: Pick<EventTarget, "addEventListener" | "removeEventListener">,
  seconds: () => number,
  lock: () => void,
  now: () => number = Date.now,
): () => void {
  let last = now();
  let done = false;
  const touched = () => {
    last = now();
  };
  const events = ["keydown", "pointerdown", "pointermove", "wheel"];
  for (const name of events) target.addEventListener(name, touched, { passive: true });
  const timer = setInterval(() => {
    if (!done && now() - last >= seconds() * 1000) {
      done = true;
      stop();
      lock();
    }
  }, 1000);
  function stop(): void {
    clearInterval(timer);
    for (const name of events) target.removeEventListener(name, touched);
  }
  return stop;
}
