#!/usr/bin/env python3
"""Independent Python implementation of balance-split's random streams and selections.

It re-derives, from the documented algorithms alone, what `balance-split balance` writes, so
a Python project can check (or reproduce) a manifest without the Rust tool:

    pip install cryptography
    python examples/python/rng_reference.py                      # prints the pinned draws
    python examples/python/rng_reference.py MANIFEST.json         # re-derives source_index

Stream: key = SHA-256("balance-split/rng/v1\\0" + purpose + "\\0" + seed:u64le + context:u64le...),
ChaCha20 for balancing decisions, ChaCha8 for epoch streams (djb variant, 64-bit counter and
stream id both 0); next_u64 = the next 8 keystream bytes, little-endian. below(n): Lemire's
multiply-and-reject.
"""
import hashlib
import json
import struct
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

MASK = 2**64 - 1


def derive_key(seed, purpose, context):
    return hashlib.sha256(
        b"balance-split/rng/v1\0" + purpose.encode() + b"\0" + struct.pack("<Q", seed)
        + b"".join(struct.pack("<Q", c) for c in context)
    ).digest()


def chacha_block(key, counter, rounds):
    """One 64-byte ChaCha block (djb layout: 64-bit counter, 64-bit stream id 0)."""
    def rotl(v, n):
        return ((v << n) & 0xFFFFFFFF) | (v >> (32 - n))

    def qr(x, a, b, c, d):
        x[a] = (x[a] + x[b]) & 0xFFFFFFFF; x[d] = rotl(x[d] ^ x[a], 16)
        x[c] = (x[c] + x[d]) & 0xFFFFFFFF; x[b] = rotl(x[b] ^ x[c], 12)
        x[a] = (x[a] + x[b]) & 0xFFFFFFFF; x[d] = rotl(x[d] ^ x[a], 8)
        x[c] = (x[c] + x[d]) & 0xFFFFFFFF; x[b] = rotl(x[b] ^ x[c], 7)

    state = list(struct.unpack("<4I", b"expand 32-byte k")) + list(struct.unpack("<8I", key)) + [
        counter & 0xFFFFFFFF, counter >> 32, 0, 0]
    x = state[:]
    for _ in range(rounds // 2):
        qr(x, 0, 4, 8, 12); qr(x, 1, 5, 9, 13); qr(x, 2, 6, 10, 14); qr(x, 3, 7, 11, 15)
        qr(x, 0, 5, 10, 15); qr(x, 1, 6, 11, 12); qr(x, 2, 7, 8, 13); qr(x, 3, 4, 9, 14)
    return struct.pack("<16I", *[(a + b) & 0xFFFFFFFF for a, b in zip(x, state)])


class Stream:
    """ChaCha20 (balancing decisions) through the `cryptography` package, or, with
    rounds=8, ChaCha8 (epoch streams) through chacha_block above."""

    def __init__(self, seed, purpose, context=(), rounds=20):
        key = derive_key(seed, purpose, context)
        if rounds == 20:
            ks = Cipher(algorithms.ChaCha20(key, b"\0" * 16), mode=None).encryptor()
            self._bytes = lambda n: ks.update(b"\0" * n)
        else:
            buf = bytearray()
            counter = [0]

            def take(n):
                while len(buf) < n:
                    buf.extend(chacha_block(key, counter[0], rounds))
                    counter[0] += 1
                out = bytes(buf[:n])
                del buf[:n]
                return out
            self._bytes = take

    def next_u64(self):
        return struct.unpack("<Q", self._bytes(8))[0]

    def below(self, n):
        m = self.next_u64() * n
        if (m & MASK) < n:
            t = (2**64 - n) % n
            while (m & MASK) < t:
                m = self.next_u64() * n
        return m >> 64


def downsample(labels, k, ratio, seed):
    by_class = [[i for i, l in enumerate(labels) if l == c] for c in range(k)]
    cap = int(min(len(a) for a in by_class) / ratio)
    keep = []
    for c, a in enumerate(by_class):
        t = min(cap, len(a))
        if t < len(a):
            s = Stream(seed, "downsampling", [c])
            for i in range(t):
                j = i + s.below(len(a) - i)
                a[i], a[j] = a[j], a[i]
            a = a[:t]
        keep += a
    return sorted(keep)


def upsample(labels, k, ratio, seed):
    by_class = [[i for i, l in enumerate(labels) if l == c] for c in range(k)]
    target = int(max(len(a) for a in by_class) * ratio)
    copies = [1] * len(labels)
    for c, a in enumerate(by_class):
        if len(a) < target:
            s = Stream(seed, "upsampling", [c])
            for _ in range(target - len(a)):
                copies[a[s.below(len(a))]] += 1
    return [i for i, n in enumerate(copies) for _ in range(n)]


def uniform(s):
    return (s.next_u64() >> 11) * (1.0 / (1 << 53))


def epoch_stream(labels, k, seed, epoch, weighted=None, shuffle=True):
    """balance-split's epoch sampler: weighted = (class_weights, replacement, num_samples)."""
    s = Stream(seed, "epoch", [epoch], rounds=8)
    n = len(labels)
    if weighted is None:
        a = list(range(n))
        if shuffle:
            for i in range(n - 1, 0, -1):
                j = s.below(i + 1)
                a[i], a[j] = a[j], a[i]
        return a
    w, replacement, m = weighted
    members = [[i for i, l in enumerate(labels) if l == c] for c in range(k)]
    out = []
    if replacement:
        mass = [len(members[c]) * w[c] for c in range(k)]
        total = sum(mass)
        prob = [x * k / total for x in mass]
        alias = list(range(k))
        small = [c for c in range(k) if prob[c] < 1.0]
        large = [c for c in range(k) if prob[c] >= 1.0]
        while small and large:
            sm = small.pop()
            lg = large[-1]
            alias[sm] = lg
            prob[lg] = (prob[lg] + prob[sm]) - 1.0
            if prob[lg] < 1.0:
                large.pop()
                small.append(lg)
        heaviest = 0
        for c in range(k):
            if mass[c] > mass[heaviest]:
                heaviest = c
        for c in small + large:
            if mass[c] > 0.0:
                prob[c] = 1.0
            else:
                prob[c], alias[c] = 0.0, heaviest
        for _ in range(m):
            x = (s.next_u64() >> 11) * k
            col, coin = x >> 53, (x & ((1 << 53) - 1)) * (1.0 / (1 << 53))
            c = col if coin < prob[col] else alias[col]
            out.append(members[c][s.below(len(members[c]))])
        return out
    for _ in range(m):
        mass = [len(members[c]) * w[c] for c in range(k)]
        u = uniform(s) * sum(mass)
        acc, cls = 0.0, None
        for c in range(k):
            if mass[c] > 0.0:
                acc += mass[c]
                cls = c
                if u < acc:
                    break
        pool = members[cls]
        j = s.below(len(pool))
        pool[j], pool[-1] = pool[-1], pool[j]  # Rust's Vec::swap_remove
        out.append(pool.pop())
    return out


def main():
    if len(sys.argv) == 1:
        s = Stream(0, "downsampling", [1])
        print([s.below(1000) for _ in range(4)])  # [787, 922, 145, 567]
        s = Stream(42, "upsampling", [0])
        print([s.below(7) for _ in range(4)])  # [5, 2, 5, 6]
        labels = [0, 1, 0, 1, 0, 0, 0, 0]
        print(epoch_stream(labels, 2, 0, 0))
        print(epoch_stream(labels, 2, 0, 1))
        print(epoch_stream(labels, 2, 0, 0, ([1.0, 3.0], True, 10)))
        print(epoch_stream(labels, 2, 0, 0, ([1.0, 3.0], False, 8)))
        return
    m = json.load(open(sys.argv[1]))
    b = m["balancing"]
    src = json.load(open(b["source"]["split_file"]))
    labels = [e["label"] for e in src["train"]]
    k = len(src["metadata"]["classes"])
    if b["strategy"] == "downsampling":
        idx = downsample(labels, k, b["config"]["downsampling"]["target_ratio"], b["seed"])
    elif b["strategy"] == "upsampling":
        idx = upsample(labels, k, b["config"]["upsampling"]["target_ratio"], b["seed"])
    else:
        idx = list(range(len(labels)))
    print("source_index matches" if idx == b["source_index"] else "source_index DIFFERS")
    sys.exit(0 if idx == b["source_index"] else 3)


if __name__ == "__main__":
    main()
