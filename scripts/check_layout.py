#!/usr/bin/env python3
"""check_layout.py — the layout rules of DEVELOPERS.md and issue #12, checked on the sources.

    python3 scripts/check_layout.py [cycles|sizes|functions|layers|io|all]

cycles     no two .c files of lib/ or src/ call each other in a loop: the graph has an edge
           A -> B when A.c calls a non-static function defined in B.c; every strongly
           connected component must be a single file (callbacks through pointers do not count)
sizes      no .c file in lib/ is over 900 lines
functions  no function in lib/ or src/ is over 150 lines (a body from a "{" in column 0 to
           the next "}" in column 0, the house style that .clang-format keeps)
layers     lib/proxy (above the server and the client) and lib/handlers include no internal
           header of the layers they sit on: public API only
io         socket I/O on connections (recv, send, writev, readv, sendmsg, recvmsg, sendfile,
           shutdown, SSL_read, SSL_write, ...) is called only in the transport (lib/transport/,
           lib/tls/, at most three files), sock_diag's netlink socket aside

Prints one line per violation and exits 1 when there is any; exit 0 and "ok" otherwise."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_FILE = 900
MAX_FUNC = 150
IO_CALLS = ("recv", "send", "writev", "readv", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
            "sendfile", "recvfrom", "sendto", "shutdown", "splice", "SSL_read", "SSL_write",
            "SSL_read_ex", "SSL_write_ex", "SSL_shutdown", "SSL_sendfile")
IO_ALLOWED_DIRS = ("lib/transport/", "lib/tls/")
IO_EXEMPT = {"lib/diag/sockdiag.c": "netlink sock_diag socket, not a connection"}
KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "do", "else", "case", "defined",
            "__attribute__", "_Static_assert", "__builtin_expect", "alignof", "_Alignof"}


def sources(dirs, ext=(".c",)):
    out = []
    for d in dirs:
        for base, _, files in os.walk(os.path.join(ROOT, d)):
            for f in sorted(files):
                if f.endswith(ext):
                    out.append(os.path.relpath(os.path.join(base, f), ROOT))
    return sorted(out)


def strip_c(text):
    """Remove comments and string/char literals, keeping line breaks."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + "\n" * text.count("\n", i, j) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as f:
        return f.read()


FUNC_DEF = re.compile(r"^(?!static\b)[A-Za-z_][\w \t\*]*?\b(\w+)\s*\(", re.M)
STATIC_DEF = re.compile(r"^static\b[\w \t\*]*?\b(\w+)\s*\(", re.M)


def definitions(code):
    """Names of functions defined in code: a signature in column 0 whose body opens with a
    "{" in column 0 on a following line."""
    lines = code.split("\n")
    public, private = set(), set()
    for i, line in enumerate(lines):
        if line != "{":
            continue
        j = i - 1
        sig = []
        while j >= 0 and lines[j] and not lines[j].startswith((" ", "\t", "}", "#")):
            sig.insert(0, lines[j])
            if "(" in lines[j] and re.match(r"^[A-Za-z_]", lines[j]):
                break
            j -= 1
        s = " ".join(sig)
        m = re.match(r"^(static\b)?[\w \t\*]*?\b(\w+)\s*\(", s)
        if m and m.group(2) not in KEYWORDS:
            (private if m.group(1) else public).add(m.group(2))
    return public, private


def check_cycles():
    files = sources(["lib", "src"])
    code = {f: strip_c(read(f)) for f in files}
    owner = {}
    for f in files:
        pub, _ = definitions(code[f])
        for name in pub:
            owner.setdefault(name, f)
    calls = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
    edges = {f: set() for f in files}
    for f in files:
        _, priv = definitions(code[f])
        for m in calls.finditer(code[f]):
            g = owner.get(m.group(1))
            if g and g != f and m.group(1) not in priv:
                edges[f].add(g)
    # Tarjan's strongly connected components.
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(comp)

    sys.setrecursionlimit(10000)
    for v in files:
        if v not in index:
            visit(v)
    bad = []
    for comp in comps:
        if len(comp) > 1:
            comp = sorted(comp)
            why = []
            for a in comp:
                for b in sorted(edges[a] & set(comp)):
                    why.append("%s -> %s" % (a, b))
            bad.append("cycle: %s (%s)" % (" ".join(comp), "; ".join(why)))
    return bad


def check_sizes():
    bad = []
    for f in sources(["lib"]):
        n = read(f).count("\n")
        if n > MAX_FILE:
            bad.append("size: %s has %d lines (max %d)" % (f, n, MAX_FILE))
    return bad


def check_functions():
    bad = []
    for f in sources(["lib", "src"]):
        lines = strip_c(read(f)).split("\n")
        start = None
        for i, line in enumerate(lines):
            if line == "{":
                start = i
            elif line.startswith("}") and start is not None:
                n = i - start + 1
                if n > MAX_FUNC:
                    sig = lines[start - 1].strip() if start else ""
                    bad.append("function: %s:%d %s is %d lines (max %d)" %
                               (f, start, sig[:60], n, MAX_FUNC))
                start = None
    return bad


def check_io():
    bad, used = [], set()
    pat = re.compile(r"(?<![\w.>])(%s)\s*\(" % "|".join(IO_CALLS))
    for f in sources(["lib", "src"], (".c", ".h")):
        code = strip_c(read(f))
        for m in pat.finditer(code):
            line = code.count("\n", 0, m.start()) + 1
            if f.startswith(IO_ALLOWED_DIRS):
                used.add(f)
                continue
            if f in IO_EXEMPT:
                continue
            bad.append("io: %s:%d calls %s() outside the transport" % (f, line, m.group(1)))
    if len(used) > 3:
        bad.append("io: the transport is %d files (max 3): %s" % (len(used), " ".join(sorted(used))))
    return bad


# Layers that may use only the public API of the layers under them (include/tether/*), never
# their internal headers: directory -> internal header prefixes it must not include.
PUBLIC_ONLY = {"lib/proxy/": ("server/", "client/", "transport/", "http1/"),
               "lib/handlers/": ("client/",)}


def check_layers():
    bad = []
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
    for d, banned in PUBLIC_ONLY.items():
        for f in sources([d], (".c", ".h")):
            text = read(f)
            for m in inc.finditer(text):
                if m.group(1).startswith(banned):
                    line = text.count("\n", 0, m.start()) + 1
                    bad.append("layers: %s:%d includes %s (public API only)" % (f, line, m.group(1)))
    return bad


CHECKS = {"cycles": check_cycles, "sizes": check_sizes, "functions": check_functions,
          "io": check_io, "layers": check_layers}


def main():
    which = sys.argv[1:] or ["all"]
    names = list(CHECKS) if "all" in which else which
    bad = []
    for n in names:
        if n not in CHECKS:
            print("usage: check_layout.py [%s|all]" % "|".join(CHECKS), file=sys.stderr)
            return 2
        bad += CHECKS[n]()
    for b in bad:
        print(b)
    if not bad:
        print("ok")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
