#!/usr/bin/env python3
# Count the page records of a file store's level-0 segments: whole pages ('P')
# and deltas ('D', docs/FORMAT.md), and the deltas' mean payload.  Unencrypted
# stores only; reads the format directly (header 128 bytes, then blocks).
# usage: python3 bench/segstat.py STORE_DIR
import glob, zlib, struct, sys
P=D=0; dl=0
for f in sorted(glob.glob(sys.argv[1]+'/seg/*.seg')):
    b=open(f,'rb').read(); ps=struct.unpack('>I',b[12:16])[0]; off=128; recs=bytearray()
    while b[off:off+1]==b'B':
        enc=b[off+1]; rl,sl=struct.unpack('>II',b[off+4:off+12]); data=b[off+16:off+16+sl]
        recs+= zlib.decompress(data) if enc==1 else data; off+=16+sl
    i=0
    while i<len(recs):
        t=recs[i:i+1]
        if t==b'T': i+=25
        elif t==b'E': i+=10
        elif t==b'P': P+=1; i+=5+ps
        elif t==b'D': n=struct.unpack('>I',recs[i+5:i+9])[0]; D+=1; dl+=n; i+=9+n
        else: raise SystemExit('bad rec %r'%t)
print("P=%d D=%d avg_delta=%.0f" % (P, D, dl/max(D,1)))
