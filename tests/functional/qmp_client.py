#!/usr/bin/env python3
"""A QMP client for tests/functional/qmp.test.ts, using only the standard library.

Connects to the Unix socket given as argv[1], checks the greeting, negotiates with
qmp_capabilities, then serves requests read from stdin, one JSON object a line:
  {"execute": ..., "arguments": ..., "id": ...}  sent as is; prints the events that
                                                 arrive first, then the answer
  {"wait_event": NAME}                           prints messages up to that event
  {"read_eof": true}                             prints messages until the server closes
Every message from the server is printed as one JSON line, with {"eof": true} at the end.
"""
import json
import socket
import sys
import time


def main():
    path = sys.argv[1]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.time() + 60
    while True:
        try:
            sock.connect(path)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    stream = sock.makefile('rb')

    def receive():
        line = stream.readline()
        if not line:
            return None
        if not line.endswith(b'\r\n'):
            raise SystemExit('line without CRLF: %r' % line)
        return json.loads(line)

    def emit(msg):
        sys.stdout.write(json.dumps(msg) + '\n')
        sys.stdout.flush()

    greeting = receive()
    assert 'QMP' in greeting and 'version' in greeting['QMP'], greeting
    emit(greeting)
    sock.sendall(b'{"execute": "qmp_capabilities"}\n')
    answer = receive()
    assert answer == {'return': {}}, answer
    emit({'negotiated': True})

    for request in sys.stdin:
        request = json.loads(request)
        if 'wait_event' in request:
            while True:
                msg = receive()
                if msg is None:
                    emit({'eof': True})
                    return
                emit(msg)
                if msg.get('event') == request['wait_event']:
                    break
        elif 'read_eof' in request:
            while True:
                msg = receive()
                if msg is None:
                    emit({'eof': True})
                    return
                emit(msg)
        else:
            sock.sendall(json.dumps(request).encode() + b'\r\n')
            while True:
                msg = receive()
                if msg is None:
                    emit({'eof': True})
                    return
                emit(msg)
                if 'return' in msg or 'error' in msg:
                    break


if __name__ == '__main__':
    main()
