#!/usr/bin/python3
"""A small FastCGI program for exec pools, misbehaving on request.

Run as `exec.command = python3 fcgi_app.py OPTION...`: it accepts on fd 0
(FCGI_LISTENSOCK_FILENO) like any libfcgi program, honours FCGI_KEEP_CONN,
and answers every request with one line of facts the tests check:
`pid=P conn_req=N total=T body=LEN keep=K`.

Options:
  big=BYTES        write BYTES of output before reading any of the body
                   (deadlocks a relay that blocks writing the body)
  exit-after=N     exit after N requests, as php-cgi does with PHP_FCGI_MAX_REQUESTS
  ignore-term      ignore SIGTERM
  grandchild=FILE  leave a child behind (same process group) and one in its own
                   session; write their pids to FILE
  env              answer with the FCGI/PHP environment variables instead
  misbehave        the query string picks a fault for that request:
                   wrongid   END_REQUEST for another request id first, then the answer
                   cut       headers and 1000 bytes of body, then close the connection
                   die       the same, then exit
                   malformed a record of FastCGI version 9, then hang
                   hang      never answer
  (query) leak=MB  keep MB more of memory for good (a leaking program: pm.max_memory)
  close-late       ignore FCGI_KEEP_CONN as FCGI.pm apps that read exactly their body
                   do: after END_REQUEST, wait a little, read up to 8 KiB ahead
                   (the start of whatever came next), then shut the connection
  libfcgi-strict   behave as libfcgi with a program that never reads its input:
                   answer without reading STDIN (its records stay in the kept
                   connection), and close a kept connection whose next record is not
                   a BEGIN_REQUEST without answering (libfcgi's protocol error)
"""
import hashlib
import os
import re
import signal
import socket
import struct
import sys
import time

BEGIN, END, PARAMS, STDIN, STDOUT = 1, 3, 4, 5, 6
LEAKED = []


def opts():
    out = {}
    for a in sys.argv[1:]:
        k, _, v = a.partition("=")
        out[k] = v
    return out


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def record(self):
        _, rtype, rid, clen, pad = struct.unpack(">BBHHBx", self.read_exact(8))
        content = self.read_exact(clen)
        self.read_exact(pad)
        return rtype, rid, content

    def send(self, rtype, rid, data=b""):
        for i in range(0, max(len(data), 1), 65535):
            part = data[i:i + 65535]
            pad = (8 - len(part) % 8) % 8
            self.sock.sendall(struct.pack(">BBHHBx", 1, rtype, rid, len(part), pad) + part + b"\0" * pad)
            if not part:
                break


def params(data):
    out, i = {}, 0
    while i < len(data):
        lens = []
        for _ in range(2):
            if data[i] < 128:
                lens.append(data[i])
                i += 1
            else:
                lens.append(struct.unpack(">I", data[i:i + 4])[0] & 0x7fffffff)
                i += 4
        name = data[i:i + lens[0]]
        value = data[i + lens[0]:i + lens[0] + lens[1]]
        i += lens[0] + lens[1]
        out[name.decode()] = value.decode("latin-1")
    return out


def main():
    o = opts()
    if "ignore-term" in o:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "grandchild" in o:
        kids = []
        for own_session in (False, True):
            pid = os.fork()
            if pid == 0:
                if own_session:
                    os.setsid()
                os.closerange(0, 3)
                while True:
                    time.sleep(60)
            kids.append(pid)
        with open(o["grandchild"], "w") as f:
            f.write(" ".join(map(str, kids)))
    listener = socket.socket(fileno=0)
    total = 0
    exit_after = int(o.get("exit-after", "0"))
    while True:
        sock, _ = listener.accept()
        c = Conn(sock)
        conn_req = 0
        try:
            while True:
                rtype, rid, content = c.record()
                if rtype != BEGIN:
                    if "libfcgi-strict" in o:
                        # libfcgi's close: shutdown(SHUT_WR), then read to EOF, so the
                        # peer sees an end of stream, not a reset.  The pause lets the
                        # next request be sent first, as happens when libfcgi reads the
                        # stale record late: the timing of the real race, made certain.
                        time.sleep(0.3)
                        sock.shutdown(socket.SHUT_WR)
                        while sock.recv(65536):
                            pass
                        break
                    continue
                keep = content[2] & 1
                pdata = b""
                while True:
                    rtype, _, content = c.record()
                    if rtype == PARAMS and not content:
                        break
                    pdata += content
                env = params(pdata)
                leak = re.search(r"(?:^|&)leak=(\d+)", env.get("QUERY_STRING", ""))
                if leak:
                    LEAKED.append(b"\x01" * (int(leak.group(1)) << 20))
                conn_req += 1
                total += 1
                if "big" in o:
                    c.send(STDOUT, rid, b"Content-Type: text/plain\r\n\r\n" + b"x" * int(o["big"]))
                body = hashlib.sha256()
                blen = 0
                while "libfcgi-strict" not in o:
                    rtype, _, content = c.record()
                    if rtype == STDIN and not content:
                        break
                    body.update(content)
                    blen += len(content)
                if "env" in o:
                    lines = [f"{k}={v}" for k, v in sorted(os.environ.items())
                             if k.startswith(("FCGI", "PHP_", "APP_"))]
                    text = "\n".join(lines) + "\n"
                else:
                    text = (f"pid={os.getpid()} conn_req={conn_req} total={total} body={blen} "
                            f"sha={body.hexdigest()[:16]} keep={keep} q={env.get('QUERY_STRING', '')}\n")
                head = b"" if "big" in o else b"Content-Type: text/plain\r\n\r\n"
                q = env.get("QUERY_STRING", "")
                if "misbehave" in o and misbehave(c, rid, q, head + text.encode()):
                    break
                c.send(STDOUT, rid, head + text.encode())
                c.send(STDOUT, rid)
                c.send(END, rid, struct.pack(">IB3x", 0, 0))
                if exit_after and total >= exit_after:
                    sock.close()
                    return 0
                if "close-late" in o:
                    time.sleep(0.2)
                    sock.setblocking(False)
                    try:
                        sock.recv(8192)
                    except OSError:
                        pass
                    sock.shutdown(socket.SHUT_RDWR)
                    break
                if not keep:
                    break
        except (EOFError, ConnectionError):
            pass
        sock.close()


def misbehave(c, rid, q, answer):
    """The fault the query asks for; True when the connection is done with."""
    if "wrongid" in q:
        c.send(END, rid + 1, struct.pack(">IB3x", 0, 0))
        time.sleep(0.5)       # the web server's next request comes meanwhile
        return False          # then the real answer, for rid, follows as usual
    if "cut" in q or "die" in q:
        c.send(STDOUT, rid, b"Content-Type: text/plain\r\n\r\n" + b"y" * 1000)
        if "die" in q:
            os._exit(3)
        c.sock.close()
        return True
    if "malformed" in q:
        c.sock.sendall(struct.pack(">BBHHBx", 9, STDOUT, rid, 0, 0))
    if "malformed" in q or "hang" in q:
        while True:
            time.sleep(60)
    return False


if __name__ == "__main__":
    sys.exit(main())
