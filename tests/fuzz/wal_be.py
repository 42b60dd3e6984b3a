#!/usr/bin/env python3
"""Rewrite a SQLite WAL file as a big-endian-checksum writer would have
written it (magic 0x377f0683): same frames, every checksum of the chain
recomputed with the words read big-endian.  SQLite on x86 only ever writes
0x377f0682, so this is how tests get a WAL of the other kind.

usage: wal_be.py IN OUT   (frames past the valid prefix are dropped)"""
import struct
import sys


def cksum(data, s1, s2, big):
    fmt = ">%dI" if big else "<%dI"
    words = struct.unpack(fmt % (len(data) // 4), data)
    for i in range(0, len(words), 2):
        s1 = (s1 + words[i] + s2) & 0xFFFFFFFF
        s2 = (s2 + words[i + 1] + s1) & 0xFFFFFFFF
    return s1, s2


def main():
    src = open(sys.argv[1], "rb").read()
    magic, ver, ps, seq, salt1, salt2 = struct.unpack(">6I", src[:24])
    big_in = magic & 1
    hdr = struct.pack(">6I", 0x377F0683, ver, ps, seq, salt1, salt2)
    s1, s2 = cksum(hdr, 0, 0, True)
    out = [hdr, struct.pack(">2I", s1, s2)]
    # walk the input's valid prefix with its own byte order
    i1, i2 = cksum(src[:24], 0, 0, big_in)
    off, fs = 32, 24 + ps
    while off + fs <= len(src):
        fh, page = src[off:off + 24], src[off + 24:off + fs]
        if fh[8:16] != src[16:24]:
            break
        i1, i2 = cksum(fh[:8] + page, i1, i2, big_in)
        if struct.unpack(">2I", fh[16:24]) != (i1, i2):
            break
        s1, s2 = cksum(fh[:8] + page, s1, s2, True)
        out.append(fh[:16] + struct.pack(">2I", s1, s2) + page)
        off += fs
    open(sys.argv[2], "wb").write(b"".join(out))


if __name__ == "__main__":
    main()
