#!/usr/bin/env python3
"""Write the handcrafted seeds (those no recorded session gives, or gives
only in one form) into CORPUS/TARGET/hand-NAME.

Usage: handmade.py CORPUS [REPO]   (REPO: the repository root, for the
config examples of docs/configuration.md)
"""
import os
import re
import struct
import sys


def varint(x):
    """rsync's write_varint for small non-negative values."""
    if x < 0x80:
        return bytes([x])
    if x < 0x4000:
        return bytes([x & 0xFF, 0x80 | (x >> 8)])
    return bytes([0xC0 | ((x >> 16) & 0x1F), x & 0xFF, (x >> 8) & 0xFF])


def frame(tag, payload):
    return (((7 + tag) << 24) | len(payload)).to_bytes(4, "little") + payload


def wire_rules(rules):
    out = b"".join(struct.pack("<i", len(r)) + r for r in rules)
    return out + struct.pack("<i", 0)


def seeds(repo):
    s = {}
    greet = b"@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n"
    s["handshake"] = {
        "auth-joe": b"\0" + greet + b"auth\njoe AUTO\n--server\0-vlogDtpre.iLsfxCIvu\0.\0auth/\0\0",
        "auth-ann-ro": b"\0" + greet + b"auth\nann AUTO\n--server\0-vlogDtpr\0.\0auth/x\0\0",
        "auth-strong-md5": b"\0@RSYNCD: 32.0 md5\nstrong\njoe AUTO\n",
        "auth-old29": b"\0@RSYNCD: 29\nauth\njim AUTO\n--server\n--sender\n-vlogDtpr\n.\nauth/\n\n",
        "secluded": b"\0" + greet + b"rw\n--server\0-s\0.\0\0rsync\0--server\0-re.iLsfxCIvu\0.\0rw/a b\0\0",
        "early-input": b"\0" + greet + b"#early_input=5\nhellopub\n--server\0--sender\0-r\0.\0pub/\0\0",
        "limited": b"\0" + greet + b"limited\n--server\0--sender\0-r\0.\0limited/\0\0",
        "denied": b"\1" + greet + b"hidden\n",
        "closed-v6": b"\4" + greet + b"closed\n--server\0-r\0.\0closed/\0\0",
        "list": b"\0" + greet + b"#list\n",
        "wo-refuse": b"\0" + greet + b"wo\n--server\0--sender\0-a\0--copy-devices\0.\0wo/\0\0",
    }
    s["proxy_header"] = {
        "v1-tcp4": b"PROXY TCP4 10.1.2.3 127.0.0.1 40000 873\r\n@RSYNCD: 32.0\n",
        "v1-tcp6": b"PROXY TCP6 fd00::1234 ::1 40000 873\r\n",
        "v1-unknown": b"PROXY UNKNOWN\r\n",
        "v2-tcp4": b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c" + bytes([10, 1, 2, 3, 127, 0, 0, 1, 0x9C, 0x40, 0x03, 0x69]),
        "v2-tcp6": b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24" + bytes(range(16)) + bytes(16) + b"\x9c\x40\x03\x69",
        "v2-local": b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00",
        "v2-unix": b"\r\n\r\n\0\r\nQUIT\n\x21\x31\x00\xd8" + bytes(216),
    }
    s["option_values"] = {
        "size-k": b"\0" + b"1.5k",
        "size-kib-plus": b"\x10" + b"10MiB+1",
        "size-gb-minus": b"\x80" + b"2gb-1",
        "chmod": b"\x12" + b"Dg+s,ug+w,Fo-w,+X",
        "chmod-octal": b"\x22" + b"D2755,F644,g=u",
        "usermap": b"\x01" + b"0-99:nobody,*:root,joe:1000",
        "groupmap": b"\x00" + b"staff:root,100:0",
        "path-dots": b"\x02" + b"mod/../../etc/./passwd/",
        "path-abs": b"\x00" + b"/abs/../x",
    }
    s["args"] = {
        "hand-old-newline": bytes([2, 1]) + b"--server\n--sender\n-vlogDtpr\n--max-size=1.5m\n--chmod=Dg+s\n.\nmod/a\n\n",
        "hand-options": bytes([5, 2]) + b"--server\0--sender\0-vlogDtprze.iLsfxCIvu\0--usermap=0-10:root\0--temp-dir=../../t\0"
        + b"--partial-dir=/p/../q\0--compare-dest=../x\0--bwlimit=1k\0--compress-level=22\0.\0mod/\0\0"
        + b"\x05zstd\x06lz4 zlib",
    }
    entry_p32 = varint(0x1800) + b"\x01." + varint(0)  # a varint-flags entry head
    s["flist"] = {
        "hand-missing": bytes([5 | 0x08, 0, 1]) + varint(0x02) + b"\x01a" + b"\0\0\0" + varint(0) + varint(0),
        "hand-nsec": bytes([4 | 0x08, 0x02, 0]) + entry_p32,
    }
    s["ndx"] = {
        "hand-p32": bytes([5]) + b"\x01\x01\xfe\x01\x00\xfe\x80\x01\x02\x03\xff\x01\xff\xfe\x00\x05\x00",
        "hand-p29": bytes([2]) + struct.pack("<iiii", 0, 5, -1, -2),
    }
    s["demux"] = {
        "hand-messages": b"\1\2\3\4" + frame(0, b"hel") + frame(42, b"") + frame(22, struct.pack("<i", 3)) + frame(100, struct.pack("<i", 7))
        + frame(2, b"info\n") + frame(0, b"lo") + frame(86, struct.pack("<i", 12)),
    }
    s["filter"] = {
        "hand-sender": bytes([5]) + wire_rules([b"- *.o", b"+ /keep/***", b"-! */", b"H .git/", b"S x", b"!", b"- **/tmp/**",
                                                 b":n- .cvsignore", b"dir-merge .rules", b"-/ abs", b"-x user.*", b"P p", b"- [a-c]?x"])
        + b"a.o\nkeep/x\ndeep/tmp/a\nabs",
        "hand-receiver": bytes([5 | 0x40 | 0x80]) + wire_rules([b"P keep", b"R junk", b"-r tmp", b"- *.o", b":e .rsync-filter"]) + b"keep\njunk",
        "hand-old28": bytes([1]) + wire_rules([b"*.o", b"+ a"]) + b"x.o",
    }
    s["merge"] = {
        "hand-rules": b"\0" + b"# comment\n- *.o\n+ keep.o\n- /build\n-r ignored\nP prot\nexclude_x\ninclude y\n!\nclear\n- last\n",
        "hand-words": bytes([1 | 0x10]) + b"*.tmp  core\n! a b\nx/**/y\n",
        "hand-include-dir": bytes([2 | 0x04 | 0x20]) + b"/top\n*.c\n",
    }
    s["xattr_request"] = {
        "hand-all": b"\0" + varint(2) + varint(1) + varint(1) + b"\0",
        "hand-twice": b"\3" + varint(3) + b"\0" + varint(3) + b"\0",
        "hand-bad": b"\4" + varint(1) + b"\0",
    }
    acl_user = struct.pack("<IIII", 6, 0x80, 0x80, 4) + struct.pack("<II", 1000, 7 | 0x80000000) + struct.pack("<II", 100, 5)
    kernel = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in
                                               [(1, 7, 0xFFFFFFFF), (2, 6, 1000), (4, 5, 0xFFFFFFFF), (8, 4, 100), (0x10, 7, 0xFFFFFFFF), (0x20, 4, 0xFFFFFFFF)])
    s["acls"] = {
        "hand-fake-file": b"\0" + struct.pack("<H", 0o644) + struct.pack("<H", len(acl_user)) + acl_user + b"\0\0",
        "hand-fake-dir": b"\1" + struct.pack("<H", 0o755) + struct.pack("<H", len(acl_user)) + acl_user + struct.pack("<H", 16) + acl_user[:16],
        "hand-kernel-file": b"\2" + struct.pack("<H", 0o640) + struct.pack("<H", len(kernel)) + kernel + b"\0\0",
        "hand-kernel-dir": b"\x0b" + struct.pack("<H", 0o750) + struct.pack("<H", len(kernel)) + kernel + struct.pack("<H", len(kernel)) + kernel,
    }
    s["files_from"] = {
        "hand-file-lines": b"\3" + b"# comment\n;other\na\r\nb/c\n\nd\n",
        "hand-file-nul": b"\4" + b"a\0#x\0b\0\0",
        "hand-framed31": b"\2" + frame(0, b"a\0b") + frame(42, b"") + frame(0, b"\0\0"),
    }
    conf = (b"# global\nport = 873\nmotd file = /etc/motd\nuid = nobody\n[pub]\n path = /srv/pub\n comment = Public %RSYNC_USER_NAME%\n"
            b" hosts allow = 10.0.0.0/8, 192.168.1.1\n refuse options = delete* c\n auth users = joe:rw, @staff:ro\n"
            b" secrets file = /etc/rsyncd.secrets\n exclude = *.tmp /private\n incoming chmod = Dg+s,ug+w\n dont compress = *.gz *.zst\n"
            b"[other]\n path = /srv/other\n read only = no\n max connections = 4\n timeout = 600\n")
    s["config"] = {"hand-classic": conf, "hand-continued": b"[a]\n path = /x \\\n  /y\n list = yes\n\tfake super = yes\n[ b ]\npath=/b\n"}
    toml_doc = (b'[global]\nport = 8873\n"read only" = false\n\n[modules.pub]\npath = "/srv/pub"\nhosts_allow = ["10.0.0.0/8", "192.168.1.1"]\n'
                b'max_connections = 3\n[modules.b]\npath = "/b"\n"auth users" = ["joe:rw", "@g:ro"]\n')
    s["config_toml"] = {"hand-basic": toml_doc}
    doc = os.path.join(repo, "docs", "configuration.md")
    if os.path.exists(doc):
        text = open(doc, "rb").read()
        for i, block in enumerate(re.findall(rb"```toml\n(.*?)```", text, re.S)):
            s["config_toml"][f"doc-{i}"] = block
        for i, block in enumerate(re.findall(rb"```(?:ini|conf|rsyncd)?\n(\[.*?)```", text, re.S)):
            s["config"][f"doc-{i}"] = block
    return s


def main(corpus, repo):
    for target, files in seeds(repo).items():
        os.makedirs(os.path.join(corpus, target), exist_ok=True)
        for name, data in files.items():
            name = name if name.startswith(("hand-", "doc-")) else f"hand-{name}"
            with open(os.path.join(corpus, target, name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(files)} handcrafted seeds")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else os.path.join(here, "..", "..", ".."))
