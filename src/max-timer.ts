/**
 * The longest delay Node's setTimeout and setInterval keep as given:
 * 2^31 - 1 ms, about 24.8 days. A longer one fires after 1 ms (with a
 * warning), so every timer from a setting, a lease or a deadline is capped
 * at this or refused.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
