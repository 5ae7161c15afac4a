#!/usr/bin/env python3
"""Cut seed inputs for the fuzz targets out of sessions recorded by record.sh.

Usage: cut.py RECORDING CORPUS

RECORDING holds tap/N.{c2s,s2c} and sessions.txt ("N LABEL KIND PROTOCOL
LETTERS"; LETTERS: o g l D H c U R as the rsync options, I incremental
recursion, F a filter list before a push's file list, T --files-from,
":NAME" the forced compression). Each target's seed is its parameter
bytes (as the target's doc comment describes them) followed by the part
of the client's stream that target reads. Seeds go to CORPUS/TARGET/rec-LABEL.
"""
import os
import struct
import sys

NAMES = {b"xxh128", b"xxh3", b"xxh64", b"md5", b"md4", b"sha1", b"none", b"zstd", b"lz4", b"zlibx", b"zlib"}
# delta.rs KINDS and COMPRESSIONS order.
KIND = {"md4old": 0, "md4": 1, "md5": 2, "sha1": 3, "xxh64": 4, "xxh3": 5, "xxh128": 6, "none": 7}
SUM_LEN = {"md4old": 16, "md4": 16, "md5": 16, "sha1": 20, "xxh64": 8, "xxh3": 8, "xxh128": 16, "none": 1}
COMPRESSION = {"": 0, "zlib": 1, "zlibx": 2, "zstd": 3, "lz4": 4}
CAP = 8192


def varint(buf, pos):
    """rsync's read_varint: leading one bits of the first byte count the extra bytes."""
    ch = buf[pos]
    extra = 0
    while extra < 6 and ch & (0x80 >> extra):
        extra += 1
    low = buf[pos + 1:pos + 1 + extra]
    value = int.from_bytes(low, "little") | ((ch & ((1 << (7 - extra)) - 1)) << (8 * extra))
    return value, pos + 1 + extra


def vstrings(buf, pos):
    """Skip the checksum/compression name lists at pos; returns (lists, pos)."""
    lists = []
    while pos < len(buf):
        n, start = buf[pos], pos + 1
        if n & 0x80:
            n, start = ((n & 0x7F) << 8) | buf[pos + 1], pos + 2
        words = buf[start:start + n].split()
        if not words or not all(w in NAMES for w in words):
            break
        lists.append(words)
        pos = start + n
    return lists, pos


def text_part(c2s, protocol):
    """End of the greeting, of the module line, of the argument block."""
    greet = c2s.index(b"\n") + 1
    module = c2s.index(b"\n", greet) + 1
    end = b"\0" if protocol >= 30 else b"\n"
    pos = module
    while pos < len(c2s):
        nxt = c2s.index(end, pos)
        if nxt == pos:
            return greet, module, pos + 1
        pos = nxt + 1
    return greet, module, len(c2s)


def demux(buf):
    data, pos = bytearray(), 0
    while pos + 4 <= len(buf):
        word = int.from_bytes(buf[pos:pos + 4], "little")
        tag, n = (word >> 24) - 7, word & 0xFFFFFF
        if tag < 0:
            break
        if tag == 0:
            data += buf[pos + 4:pos + 4 + n]
        pos += 4 + n
    return bytes(data)


def frame(data):
    out = bytearray()
    for i in range(0, len(data), 0xFFFF):
        chunk = data[i:i + 0xFFFF]
        out += ((7 << 24) | len(chunk)).to_bytes(4, "little") + chunk
    return bytes(out)


def skip_filters(d, pos=0):
    while pos + 4 <= len(d):
        n = int.from_bytes(d[pos:pos + 4], "little", signed=True)
        pos += 4
        if n <= 0:
            break
        pos += n
    return pos


def find_head(d, start, count, blength, remainder):
    key = struct.pack("<ii", count, blength)
    pos = d.find(key, start)
    while pos >= 0:
        if d[pos + 12:pos + 16] == struct.pack("<i", remainder):
            return pos
        pos = d.find(key, pos + 1)
    return -1


def main(recording, corpus):
    seeds = {}

    def put(target, label, data):
        seeds.setdefault(target, {})[f"rec-{label}"] = bytes(data[:CAP])

    new_file = open(os.path.join(recording, "src", "basis"), "rb").read()
    for line in open(os.path.join(recording, "sessions.txt")):
        n, label, kind, protocol, letters = line.split()
        p = int(protocol)
        letters, _, forced = letters.partition(":")
        c2s = open(os.path.join(recording, "tap", f"{n}.c2s"), "rb").read()
        s2c = open(os.path.join(recording, "tap", f"{n}.s2c"), "rb").read()
        if not c2s:
            continue
        greet, module, args_end = text_part(c2s, p)
        # The handshake target's fixture serves module "rw" (fixture.rs).
        rest = c2s[module:args_end + 64].replace(b"mod/", b"rw/").replace(b"mod\0", b"rw\0")
        put("handshake", label, b"\0" + c2s[:greet] + (b"rw\n" if module - greet > 1 else c2s[greet:module]) + rest)
        if kind == "list":
            continue
        ok = s2c.index(b"@RSYNCD: OK\n") + 12
        compat, pos = varint(s2c, ok) if p >= 30 else (0, ok)
        server_lists, pos = vstrings(s2c, pos) if compat & 0x80 else ([], pos)
        seed = s2c[pos:pos + 4]
        client_lists, mux_start = vstrings(c2s, args_end) if compat & 0x80 else ([], args_end)
        put("args", label, bytes([p - 27, 0]) + c2s[module:mux_start])
        stream = c2s[mux_start:]
        d = demux(stream) if p >= 30 else stream
        if p >= 30:
            put("demux", label, bytes([3, 200, 0, 60]) + stream)
        if p < 30:
            checksum = "md4old"
        elif server_lists:
            theirs = server_lists[0]
            checksum = next(w for w in client_lists[0] if w in theirs).decode()
        else:
            checksum = "md5"
        compression = forced if forced else ("zlib" if "z" in letters else "")
        proper = 0x80 if compat & 0x20 else 0
        s2 = None
        if kind == "push":
            flist_at = skip_filters(d) if "F" in letters else 0
            if "F" in letters:
                put("filter", label, bytes([(p - 27) | 0x40]) + d[:flist_at] + b"a.o\nkeep\ndir/x.o")
            a = (p - 27) | (0x08 if compat & 0x80 else 0) | (0x10 if compat & 0x100 else 0) | (0x20 if compat & 0x08 else 0)
            a |= (0x40 if "o" in letters else 0) | (0x80 if "g" in letters else 0)
            b = (0x02 if "l" in letters else 0) | (0x0C if "D" in letters else 0) | (0x10 if "H" in letters else 0)
            if "c" in letters:
                b |= {16: 1, 20: 2, 8: 3}[SUM_LEN[checksum]] << 5
            b |= 0x80 if "R" in letters else 0
            c = (0x02 if "U" in letters else 0) | (0x04 if compat & 0x01 else 0)
            put("flist", label, bytes([a, b, c]) + d[flist_at:])
            head = find_head(d, flist_at, 8, 700, 100)
            if head >= 0:
                params = bytes([(p - 27) | COMPRESSION[compression] << 3, KIND[checksum] | proper]) + seed
                put("tokens", label, params + struct.pack("<HHB", 700, 100, 8) + d[head + 16:])
        else:
            after = skip_filters(d)
            put("filter", label, bytes([p - 27]) + d[:after] + b"basis2\nx.o\ndir/keep")
            put("ndx", label, bytes([p - 27]) + d[after:after + 256])
            if "T" in letters and p >= 31:
                names_end = d.find(b"\0\0", after) + 2
                names = d[after:names_end]
                put("files_from", label + "-raw29", b"\0" + names)
                put("files_from", label + "-raw30", b"\1" + names)
                put("files_from", label + "-framed31", b"\2" + frame(names))
            head = find_head(d, after, 8, 700, 100)
            if head >= 0:
                s2 = struct.unpack("<i", d[head + 8:head + 12])[0]
                sums = d[head:head + 16 + 8 * (4 + s2)]
                params = bytes([p - 27, KIND[checksum] | proper]) + seed
                seeds.setdefault("sums", {})[f"rec-{label}"] = params + sums + new_file
    for target, files in sorted(seeds.items()):
        os.makedirs(os.path.join(corpus, target), exist_ok=True)
        for name, data in sorted(files.items()):
            with open(os.path.join(corpus, target, name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(files)} seeds")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
