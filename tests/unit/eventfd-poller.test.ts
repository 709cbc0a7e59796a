/**
 * Tests for the eventfd poller thread (src/accel/kvm/eventfd-poller.ts): signals written
 * to eventfds reach their handlers on the main thread, coalesced while pending, for fds
 * added before and after others fired, and close() ends the thread.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { EventfdPoller } from '../../src/accel/kvm/eventfd-poller.js';
import { closeFd, eventfd, eventfdRead, eventfdWrite, EFD_CLOEXEC, EFD_NONBLOCK } from '../../src/accel/kvm/kvm.js';

/** A handler that counts calls and lets the test await the next one. */
function counter() {
  let calls = 0;
  let waiter: (() => void) | null = null;
  return {
    handler: () => { calls++; waiter?.(); waiter = null; },
    get calls() { return calls; },
    next: () => new Promise<void>((resolve) => { waiter = resolve; }),
  };
}

test('eventfd poller: signals reach their handlers on the main thread, and close() ends the thread', async () => {
  const poller = new EventfdPoller();
  // The poller thread does not keep the process alive (a running VM does): this test must.
  const alive = setInterval(() => {}, 1000);
  const a = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const b = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  try {
    const ca = counter();
    const cb = counter();
    poller.add(a, ca.handler);
    let fired = ca.next();
    eventfdWrite(a);
    await fired;
    assert.equal(ca.calls, 1);
    assert.equal(eventfdRead(a), 0n, 'the poller reset the counter');

    poller.add(b, cb.handler);
    fired = cb.next();
    eventfdWrite(b, 3n);
    await fired;
    assert.equal(cb.calls, 1, 'three signals before the poller ran are one call');
    assert.equal(ca.calls, 1, 'a stays quiet');

    for (let i = 0; i < 20; i++) {
      fired = ca.next();
      eventfdWrite(a);
      await fired;
    }
    assert.equal(ca.calls, 21);
  } finally {
    clearInterval(alive);
    await poller.close();
    await poller.close();
    closeFd(a);
    closeFd(b);
  }
});
