import { clientKey, FailureLimiter } from '../../src/auth/failure-limiter';

test('an address may fail perMinute times, then waits for the budget to refill, one failure per 60/perMinute s', () => {
  let now = 0;
  const limiter = new FailureLimiter(6, () => now);
  for (let i = 0; i < 6; i++) {
    expect(limiter.retryAfterMs('10.0.0.1:4000')).toBe(0);
    limiter.recordFailure(`10.0.0.1:${4000 + i}`);
  }
  expect(limiter.retryAfterMs('10.0.0.1:5000')).toBe(10_000);
  expect(limiter.retryAfterMs('10.0.0.2:5000')).toBe(0);
  now = 4_000;
  expect(limiter.retryAfterMs('10.0.0.1:5000')).toBe(6_000);
  now = 10_000;
  expect(limiter.retryAfterMs('10.0.0.1:5000')).toBe(0);
  limiter.recordFailure('10.0.0.1:5000');
  expect(limiter.retryAfterMs('10.0.0.1:5000')).toBe(10_000);
});

test('the table of addresses is bounded', () => {
  const limiter = new FailureLimiter(1, () => 0, 2);
  for (const peer of ['10.0.0.1:1', '10.0.0.2:1', '10.0.0.3:1']) limiter.recordFailure(peer);
  expect(limiter.retryAfterMs('10.0.0.1:1')).toBe(0);
  expect(limiter.retryAfterMs('10.0.0.3:1')).toBeGreaterThan(0);
});

test('clients are counted per IPv4 address and per IPv6 /64', () => {
  expect(clientKey('10.0.0.7:5123')).toBe('10.0.0.7');
  expect(clientKey('[::ffff:10.0.0.7]:5123')).toBe('10.0.0.7');
  expect(clientKey('[2001:db8:1:2:3::4]:5123')).toBe('2001:db8:1:2::/64');
  expect(clientKey('[2001:db8:1:2::99]:1')).toBe('2001:db8:1:2::/64');
  expect(clientKey('[2001:db8::1]:1')).toBe('2001:db8:0:0::/64');
  expect(clientKey('[::1]:1')).toBe('0:0:0:0::/64');
});
