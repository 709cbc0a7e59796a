/**
 * One TCP connection between the guest and a host socket (RFC 9293): the guest side
 * speaks TCP with this stack; the host side is a node:net socket, so reliability
 * towards the host is the host kernel's business. Towards the guest the stack is a
 * full, if simple, TCP: it keeps unacknowledged data until acknowledged, respects
 * the guest's window (scaled, RFC 7323), probes a zero window (RFC 9293 3.8.6.1),
 * retransmits on timeout (go-back-N with exponential backoff, RFC 6298), after three
 * duplicate ACKs and on partial ACKs (RFC 5681 3.2, RFC 6582), and accepts only
 * in-order data (out-of-order and duplicate segments are answered with an ACK, so the
 * guest retransmits).
 *
 * Memory is bounded in both directions: host data waiting for the guest's
 * acknowledgement stops the host socket when it reaches SND_BUF, and the window
 * offered to the guest is what the host socket's write buffer has room for.
 */
import type { Socket } from 'node:net';
import type { TcpSegmentOffload } from '../net.js';
import { MTU, IPV4_HLEN } from './ipv4.js';
import { ACK, FIN, PSH, RST, SYN, seqAdd, seqDiff, tcpFrame, type TcpAddrs, type TcpSegment } from './tcp-wire.js';

/** Largest segment for a guest with receive offloads: a 64 KiB IPv4 packet. */
const TSO_MAX = 0xffff - IPV4_HLEN - 20;
/** Host data held for the guest before the host socket is paused. */
const SND_BUF = 256 * 1024;
/** Guest data accepted for the host socket: the most the offered window can be. */
const RCV_BUF = 256 * 1024;
/** Our window scale: the smallest shift that lets RCV_BUF fit in 16 bits. */
const RCV_SHIFT = 3;
const OUR_MSS = MTU - IPV4_HLEN - 20;
/** RFC 9293 3.7.1: the MSS to assume when the guest does not send the option. */
const DEFAULT_MSS = 536;
/** A floor on the guest's MSS, so a tiny one cannot turn a transfer into a frame storm. */
const MIN_MSS = 64;
const RTO_INITIAL_MS = 1000;
const RTO_MAX_MS = 16000;
/** Consecutive timeouts without progress before the connection is reset. */
const MAX_RETRIES = 8;
/** How long a closed connection keeps answering retransmitted FINs (a short TIME-WAIT). */
const TIME_WAIT_MS = 2000;

/** What a connection needs from the stack around it. */
export interface TcpHooks {
  /** Sends a frame (an IPv4 packet; the stack addresses it) towards the guest; `tso`: a segment for its receive offloads. */
  output(frame: Uint8Array, tso?: TcpSegmentOffload): void;
  /** Whether the guest takes segments of up to 64 KiB with partial checksums ({@link TcpSegmentOffload}). */
  guestOffloads(): boolean;
  /** Whether the guest NIC would take a frame now. */
  canOutput(): boolean;
  /** Asks for pump() to be called when the NIC can take frames again. */
  waitOutput(c: TcpConnection): void;
  /** The connection is finished: forget it. */
  closed(c: TcpConnection): void;
}

const enum State {
  /** We sent a SYN to the guest (a forwarded host connection). */
  SynSent,
  /** The guest sent a SYN; the host socket is still connecting. */
  Connecting,
  /** We answered the guest's SYN and wait for its ACK. */
  SynReceived,
  Established,
  /** Both directions are closed; retransmitted FINs are still acknowledged. */
  TimeWait,
  Closed,
}

/** A TCP connection with the guest, spliced to a host socket. */
export class TcpConnection {
  private state: State;
  private readonly iss = crypto.getRandomValues(new Uint32Array(1))[0]!;
  private sndUna = this.iss;
  private sndNxt = this.iss;
  /** The highest sequence number sent so far (go-back-N may move sndNxt below it). */
  private sndMax = this.iss;
  private sndWnd = 0;
  private sndWl1 = 0;
  private sndWl2 = 0;
  /** Shift applied to the windows the guest advertises / we advertise (0 without window scaling). */
  private sndShift = 0;
  private rcvShift = 0;
  private irs = 0;
  private rcvNxt = 0;
  private mss = DEFAULT_MSS;
  /** Host data from sndUna on, not yet acknowledged by the guest. */
  private sendBuf: Buffer[] = [];
  private sendLen = 0;
  /** The host closed its sending side: a FIN follows the data. */
  private hostEnded = false;
  /** A FIN is in flight (sndNxt counts it). */
  private finSent = false;
  private finAcked = false;
  private finReceived = false;
  private paused = false;
  private dupAcks = 0;
  /** sndMax when fast retransmit started; ACKs below it are partial (RFC 6582). */
  private recover: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private rto = RTO_INITIAL_MS;
  private retries = 0;
  private lastWindow = 0;
  private pumping = false;
  private repump = false;

  private constructor(private readonly hooks: TcpHooks, private readonly addrs: TcpAddrs,
    private readonly socket: Socket, state: State) {
    this.state = state;
    socket.on('data', (chunk: Buffer) => this.hostData(chunk));
    socket.on('end', () => {
      this.hostEnded = true;
      this.pump();
    });
    socket.on('drain', () => this.windowOpened());
    socket.on('error', () => this.abort());
    // A clean close after both sides ended leaves only our data and FIN to deliver;
    // before the guest finished sending, its data would have nowhere to go.
    socket.on('close', () => {
      if (!this.finReceived) this.abort();
    });
  }

  /**
   * A connection for the guest's SYN `syn`; `socket` is connecting to the host side.
   * The SYN-ACK goes out once it connects, a RST if it fails.
   */
  static fromGuest(hooks: TcpHooks, addrs: TcpAddrs, syn: TcpSegment, socket: Socket): TcpConnection {
    const c = new TcpConnection(hooks, addrs, socket, State.Connecting);
    c.irs = syn.seq;
    c.rcvNxt = seqAdd(syn.seq, 1);
    c.takeSynOptions(syn);
    c.sndWnd = syn.window; // never scaled in a SYN (RFC 7323 2.2)
    c.sndWl1 = syn.seq;
    socket.once('connect', () => {
      if (c.state !== State.Connecting) return;
      c.state = State.SynReceived;
      c.sndNxt = c.sndMax = seqAdd(c.iss, 1);
      c.sendSyn();
    });
    return c;
  }

  /** A connection from a host socket (a forwarded port) to the guest: sends the SYN. */
  static toGuest(hooks: TcpHooks, addrs: TcpAddrs, socket: Socket): TcpConnection {
    const c = new TcpConnection(hooks, addrs, socket, State.SynSent);
    c.sndNxt = c.sndMax = seqAdd(c.iss, 1);
    c.sendSyn();
    return c;
  }

  /** Whether a new SYN for the same addresses may replace this connection. */
  get reusable(): boolean {
    return this.state === State.TimeWait || this.state === State.Closed;
  }

  /** A segment from the guest for this connection (RFC 9293 3.10.7). */
  input(seg: TcpSegment): void {
    switch (this.state) {
      case State.Closed:
        return;
      case State.Connecting:
        if (seg.flags & RST) this.close(false);
        return; // retransmitted SYNs wait for the host socket
      case State.SynSent:
        this.inputSynSent(seg);
        return;
      default:
        this.inputSynchronized(seg);
    }
  }

  /** RFC 9293 3.10.7.3: the answer to our SYN. */
  private inputSynSent(seg: TcpSegment): void {
    if (seg.flags & ACK && seqDiff(seg.ack, this.sndNxt) !== 0) {
      if (!(seg.flags & RST)) this.sendSegment(seg.ack, RST, null);
      return;
    }
    if (seg.flags & RST) {
      if (seg.flags & ACK) this.close(true); // refused by the guest
      return;
    }
    if (!(seg.flags & SYN) || !(seg.flags & ACK)) return; // a simultaneous open is not supported
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.takeSynOptions(seg);
    this.sndUna = seg.ack;
    this.sndWnd = seg.window;
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
    this.established();
    this.sendAck();
    this.pump();
  }

  private inputSynchronized(seg: TcpSegment): void {
    const segLen = seg.data.length + (seg.flags & SYN ? 1 : 0) + (seg.flags & FIN ? 1 : 0);
    const wnd = this.rcvWindow();
    const off = seqDiff(seg.seq, this.rcvNxt);
    // RFC 9293 3.10.7.4, first check, with the zero-window allowance: a segment at
    // rcvNxt is processed for its ACK even when its data cannot be taken.
    const acceptable = segLen === 0 || wnd === 0
      ? off === 0 || (wnd > 0 && off > 0 && off < wnd)
      : (off >= 0 && off < wnd) || (off < 0 && off + segLen > 0);
    if (seg.flags & RST) {
      // RFC 5961 3.2: only an exact match resets; an in-window one gets a challenge ACK.
      if (off === 0) this.close(true);
      else if (acceptable) this.sendAck();
      return;
    }
    if (this.state === State.TimeWait) {
      if (seg.flags & FIN) this.sendAck();
      return;
    }
    if (seg.flags & SYN) {
      // A retransmitted SYN (our SYN-ACK was lost) or anything else: RFC 5961 4.2 challenge ACK.
      if (this.state === State.SynReceived && seg.seq === this.irs) this.sendSyn();
      else this.sendAck();
      return;
    }
    if (!acceptable) {
      this.sendAck();
      return;
    }
    if (!(seg.flags & ACK)) return;
    if (this.state === State.SynReceived) {
      if (seqDiff(seg.ack, this.sndUna) <= 0 || seqDiff(seg.ack, this.sndMax) > 0) {
        this.sendSegment(seg.ack, RST, null);
        return;
      }
      this.sndUna = seg.ack;
      this.sndWnd = seg.window << this.sndShift;
      this.sndWl1 = seg.seq;
      this.sndWl2 = seg.ack;
      this.established();
    } else if (!this.processAck(seg)) {
      return;
    }
    this.retries = 0;
    let ackNow = this.processData(seg, off);
    if (this.state === State.Closed) return;
    if (wnd === 0 && segLen > 0) ackNow = true;
    if (ackNow) this.sendAck();
    this.pump();
    this.checkDone();
  }

  /** The ACK field and window of an acceptable segment; false when the segment must be dropped. */
  private processAck(seg: TcpSegment): boolean {
    const acked = seqDiff(seg.ack, this.sndUna);
    if (seqDiff(seg.ack, this.sndMax) > 0) {
      this.sendAck(); // acknowledges something never sent
      return false;
    }
    const oldWnd = this.sndWnd;
    if (seqDiff(this.sndWl1, seg.seq) < 0 || (this.sndWl1 === seg.seq && seqDiff(this.sndWl2, seg.ack) <= 0)) {
      this.sndWnd = seg.window << this.sndShift;
      this.sndWl1 = seg.seq;
      this.sndWl2 = seg.ack;
    }
    if (acked > 0) {
      const dataAcked = Math.min(acked, this.sendLen);
      if (acked > this.sendLen) this.finAcked = true; // only a sent FIN lies beyond the data
      this.consume(dataAcked);
      this.sndUna = seg.ack;
      if (seqDiff(this.sndNxt, this.sndUna) < 0) this.sndNxt = this.sndUna;
      this.dupAcks = 0;
      this.rto = RTO_INITIAL_MS;
      this.stopTimer();
      if (this.recover !== null) {
        // RFC 6582 3.2: a partial ACK during recovery points at the next hole.
        if (seqDiff(seg.ack, this.recover) < 0) this.fastRetransmit();
        else this.recover = null;
      }
    } else if (acked === 0 && seg.data.length === 0 && !(seg.flags & FIN) && this.sndWnd === oldWnd && this.sndWnd > 0 &&
      seqDiff(this.sndMax, this.sndUna) > 0 && ++this.dupAcks === 3) {
      this.recover = this.sndMax;
      this.fastRetransmit();
    }
    return true;
  }

  /** Takes in-order data and a FIN; returns whether an ACK is due. */
  private processData(seg: TcpSegment, off: number): boolean {
    if (seg.data.length === 0 && !(seg.flags & FIN)) return false;
    if (off > 0) return true; // out of order: a duplicate ACK asks for what is missing
    if (this.finReceived) return true; // a retransmission of what we already have
    let data = seg.data.subarray(Math.min(-off, seg.data.length));
    const wnd = this.rcvWindow();
    const whole = data.length <= wnd;
    if (!whole) data = data.subarray(0, wnd);
    if (data.length > 0) {
      if (this.socket.destroyed) {
        this.abort();
        return false;
      }
      this.socket.write(data);
      this.rcvNxt = seqAdd(this.rcvNxt, data.length);
    }
    if (seg.flags & FIN && whole) {
      this.rcvNxt = seqAdd(this.rcvNxt, 1);
      this.finReceived = true;
      this.socket.end();
    }
    return true;
  }

  /**
   * Sends what the guest's window and the NIC allow (called again when either opens).
   * A NIC may hand the guest's answer back while a segment is being sent; the nested
   * call then only asks the running loop to go round again, so the stack stays flat.
   */
  pump(): void {
    if (this.pumping) {
      this.repump = true;
      return;
    }
    this.pumping = true;
    do {
      this.repump = false;
      this.pumpOnce();
    } while (this.repump);
    this.pumping = false;
  }

  private pumpOnce(): void {
    if (this.state !== State.Established) return;
    for (;;) {
      const inFlight = seqDiff(this.sndNxt, this.sndUna);
      const unsent = this.sendLen - Math.min(inFlight, this.sendLen);
      if (unsent > 0) {
        const room = this.sndWnd - inFlight;
        if (room <= 0) break;
        if (!this.hooks.canOutput()) {
          this.hooks.waitOutput(this);
          break;
        }
        const tso = this.hooks.guestOffloads();
        const n = Math.min(unsent, room, tso ? TSO_MAX : this.mss);
        const seq = this.sndNxt;
        this.advance(n); // before sending: the guest's ACK may come back during output()
        this.sendSegment(seq, ACK | (n === unsent ? PSH : 0), this.peek(inFlight, n), undefined, undefined, tso);
      } else if (this.hostEnded && !this.finSent && !this.finAcked) {
        if (!this.hooks.canOutput()) {
          this.hooks.waitOutput(this);
          break;
        }
        const seq = this.sndNxt;
        this.finSent = true;
        this.advance(1);
        this.sendSegment(seq, FIN | ACK, null);
      } else {
        break;
      }
    }
    if (this.timer) return;
    const inFlight = seqDiff(this.sndNxt, this.sndUna);
    // A retransmission timer, or the persist timer of a zero window (RFC 9293 3.8.6.1).
    // Data held back only by a full NIC needs none: receiveReady() restarts the pump.
    if (inFlight > 0 || (this.sendLen > 0 && this.sndWnd === 0)) this.startTimer();
  }

  private advance(n: number): void {
    this.sndNxt = seqAdd(this.sndNxt, n);
    if (seqDiff(this.sndNxt, this.sndMax) > 0) this.sndMax = this.sndNxt;
  }

  private timeout(): void {
    this.timer = null;
    if (++this.retries > MAX_RETRIES) {
      this.abort();
      return;
    }
    this.rto = Math.min(this.rto * 2, RTO_MAX_MS);
    switch (this.state) {
      case State.SynSent:
      case State.SynReceived:
        this.sendSyn();
        return;
      case State.TimeWait:
        this.close(false);
        return;
      case State.Established:
        break;
      default:
        return;
    }
    const inFlight = seqDiff(this.sndNxt, this.sndUna);
    if (inFlight > 0) {
      // Go back N: everything after sndUna is sent again as the window allows.
      this.sndNxt = this.sndUna;
      this.finSent = false;
    } else if (this.sendLen > 0 && this.sndWnd === 0 && this.hooks.canOutput()) {
      // Zero-window probe: one byte beyond the window makes the guest report its window.
      const seq = this.sndNxt;
      this.advance(1);
      this.sendSegment(seq, ACK, this.peek(0, 1));
    }
    this.pump();
  }

  private fastRetransmit(): void {
    if (!this.hooks.canOutput()) return;
    const n = Math.min(this.sendLen, this.mss);
    if (n > 0) this.sendSegment(this.sndUna, ACK, this.peek(0, n));
    else if (this.finSent) this.sendSegment(this.sndUna, FIN | ACK, null);
  }

  private hostData(chunk: Buffer): void {
    if (this.state === State.Closed || this.state === State.TimeWait) return;
    this.sendBuf.push(chunk);
    this.sendLen += chunk.length;
    if (this.sendLen >= SND_BUF && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    this.pump();
  }

  /** The host socket flushed its write buffer: tell the guest the window is open again. */
  private windowOpened(): void {
    if (this.state === State.Established && this.lastWindow < RCV_BUF / 2 && !this.finReceived) this.sendAck();
  }

  /** Bytes [off, off + n) of the unacknowledged host data. */
  private peek(off: number, n: number): Uint8Array {
    const out = new Uint8Array(n);
    let got = 0;
    for (const b of this.sendBuf) {
      if (off >= b.length) {
        off -= b.length;
        continue;
      }
      const take = Math.min(b.length - off, n - got);
      out.set(b.subarray(off, off + take), got);
      got += take;
      off = 0;
      if (got === n) break;
    }
    return out;
  }

  /** Drops `n` acknowledged bytes from the front of the send buffer. */
  private consume(n: number): void {
    this.sendLen -= n;
    while (n > 0) {
      const b = this.sendBuf[0]!;
      if (b.length <= n) {
        n -= b.length;
        this.sendBuf.shift();
      } else {
        this.sendBuf[0] = b.subarray(n);
        n = 0;
      }
    }
    if (this.paused && this.sendLen < SND_BUF / 2) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private takeSynOptions(seg: TcpSegment): void {
    this.mss = Math.max(MIN_MSS, Math.min(seg.mss ?? DEFAULT_MSS, OUR_MSS));
    if (seg.wscale !== undefined) {
      this.sndShift = seg.wscale;
      this.rcvShift = RCV_SHIFT;
    }
  }

  private established(): void {
    this.state = State.Established;
    this.retries = 0;
    this.rto = RTO_INITIAL_MS;
    this.stopTimer();
  }

  /** The window we can offer: what the host socket's write buffer has room for. */
  private rcvWindow(): number {
    return Math.max(0, RCV_BUF - this.socket.writableLength);
  }

  private sendSyn(): void {
    // The guest's SYN decides window scaling; our own SYN always offers it.
    const wscale = this.state === State.SynSent || this.rcvShift ? RCV_SHIFT : undefined;
    const flags = this.state === State.SynSent ? SYN : SYN | ACK;
    this.startTimer(); // first: the answer may arrive while the SYN is being sent
    this.sendSegment(this.iss, flags, null, OUR_MSS, wscale);
  }

  private sendAck(): void {
    this.sendSegment(this.sndNxt, ACK, null);
  }

  /** Sends a segment; `tso`: whole to a guest with receive offloads, whatever its size, checksum left partial. */
  private sendSegment(seq: number, flags: number, data: Uint8Array | null, mss?: number, wscale?: number, tso = false): void {
    const syn = (flags & SYN) !== 0;
    const wnd = this.rcvWindow();
    // Windows in SYN segments are never scaled (RFC 7323 2.2).
    const field = Math.min(syn ? wnd : wnd >>> this.rcvShift, 0xffff);
    this.lastWindow = syn ? field : field << this.rcvShift;
    const ack = flags & ACK ? this.rcvNxt : 0;
    this.hooks.output(tcpFrame(this.addrs, seq, ack, flags, field, data, mss, wscale, tso), tso ? { mss: this.mss } : undefined);
  }

  private startTimer(): void {
    this.stopTimer();
    this.timer = setTimeout(() => this.timeout(), this.rto);
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Both directions closed: linger in TIME-WAIT to acknowledge retransmitted FINs. */
  private checkDone(): void {
    if (!(this.finAcked && this.finReceived) || this.state !== State.Established) return;
    this.state = State.TimeWait;
    this.socket.destroy();
    this.stopTimer();
    this.timer = setTimeout(() => this.timeout(), TIME_WAIT_MS);
  }

  /** Resets the guest side (if it is synchronized) and closes the host socket. */
  abort(): void {
    if (this.state === State.Closed) return;
    if (this.state === State.Connecting) this.sendSegment(0, RST | ACK, null); // connection refused
    else if (this.state !== State.TimeWait && this.state !== State.SynSent) this.sendSegment(this.sndNxt, RST | ACK, null);
    this.close(false);
  }

  /** Forgets the connection; `reset` passes a reset on to the host side. */
  close(reset: boolean): void {
    if (this.state === State.Closed) return;
    this.state = State.Closed;
    this.stopTimer();
    if (reset && !this.socket.destroyed) this.socket.resetAndDestroy();
    else this.socket.destroy();
    this.sendBuf = [];
    this.sendLen = 0;
    this.hooks.closed(this);
  }
}
