/**
 * A random address of 127.0.0.0/8 to connect from. The proxy limits connections per client
 * address; thousands of simulated clients on one machine would all be 127.0.0.1 and hit that
 * limit, where real ones come from many addresses. Linux answers for all of 127/8 on lo.
 */
export function loopbackSource(): string {
  const byte = (min: number): number => min + Math.floor(Math.random() * (255 - min));
  return `127.${byte(1)}.${byte(0)}.${byte(1)}`;
}
