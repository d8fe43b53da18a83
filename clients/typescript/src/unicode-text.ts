/**
 * Whether a string is text UTF-8 can carry, with no lone surrogate:
 * String.prototype.isWellFormed, which every Node the SDK supports has (20.15
 * and later), typed here because the SDK compiles with lib ES2022, whose
 * typings predate it.
 */
const wellFormed = (String.prototype as unknown as { isWellFormed(this: string): boolean }).isWellFormed;

export function isWellFormed(text: string): boolean {
  return wellFormed.call(text);
}
