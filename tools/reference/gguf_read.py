"""A GGUF reader for the reference forward: metadata and tensors, dequantized exactly to float64.
Written from the GGUF specification (ggml's docs/gguf.md) and the block layouts of ggml's types."""
import struct

import numpy as np

# ggml type ids -> (name, block elements, block bytes)
TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24),
         8: ("Q8_0", 32, 34), 12: ("Q4_K", 256, 144),
         13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 30: ("BF16", 1, 2)}
_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, path):
        self.buf = open(path, "rb").read()
        self.pos = 0
        if self.buf[:4] != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        self.pos = 4
        version, n_tensors, n_kv = self._u32(), self._u64(), self._u64()
        if version not in (2, 3):
            raise ValueError(f"{path}: GGUF version {version}")
        self.meta, self.kv_raw = {}, []
        for _ in range(n_kv):
            key = self._str()
            at = self.pos
            self.meta[key] = self._value(self._u32())
            self.kv_raw.append((key, self.buf[at:self.pos]))  # the type and value as stored
        infos = []
        for _ in range(n_tensors):
            name = self._str()
            dims = [self._u64() for _ in range(self._u32())]
            infos.append((name, dims, self._u32(), self._u64()))
        align = self.meta.get("general.alignment", 32)
        base = (self.pos + align - 1) // align * align
        self.tensors = {name: (dims, t, base + off) for name, dims, t, off in infos}

    def _take(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def _u32(self):
        return self._take("<I")

    def _u64(self):
        return self._take("<Q")

    def _str(self):
        n = self._u64()
        s = self.buf[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def _value(self, t):
        if t == 8:
            return self._str()
        if t == 9:
            et, n = self._u32(), self._u64()
            return [self._value(et) for _ in range(n)]
        return self._take(_SCALAR[t])

    def arch(self):
        return self.meta["general.architecture"]

    def get(self, key, default=None):
        """An architecture key ("attention.head_count" -> "<arch>.attention.head_count")."""
        return self.meta.get(f"{self.arch()}.{key}", default)

    def has(self, name):
        return name in self.tensors

    def tensor(self, name):
        """The tensor as float64, numpy shape = the GGUF dims reversed (rows of ne[0] elements)."""
        dims, t, off = self.tensors[name]
        n = int(np.prod(dims))
        tname, be, bb = TYPES[t]
        raw = np.frombuffer(self.buf, dtype=np.uint8, count=n // be * bb, offset=off)
        x = dequantize(tname, raw, n)
        return x.reshape(list(reversed(dims)))


def _f16(b):
    return b.copy().view(np.float16).astype(np.float64)


def dequantize(tname, raw, n):
    if tname == "F32":
        return raw.view(np.float32).astype(np.float64)
    if tname == "F16":
        return raw.view(np.float16).astype(np.float64)
    if tname == "BF16":
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if tname == "Q8_0":
        b = raw.reshape(-1, 34)
        return (_f16(b[:, :2]) * b[:, 2:].view(np.int8).astype(np.float64)).reshape(-1)
    if tname == "Q4_0":
        b = raw.reshape(-1, 18)
        q = b[:, 2:]
        vals = np.concatenate([(q & 15), (q >> 4)], axis=1).astype(np.float64) - 8
        return (_f16(b[:, :2]) * vals).reshape(-1)
    if tname == "Q4_1":  # d, m, 16 bytes of nibbles: d q + m
        b = raw.reshape(-1, 20)
        q = b[:, 4:]
        vals = np.concatenate([(q & 15), (q >> 4)], axis=1).astype(np.float64)
        return (_f16(b[:, :2]) * vals + _f16(b[:, 2:4])).reshape(-1)
    if tname in ("Q5_0", "Q5_1"):  # d[, m], 32 high bits, 16 bytes of nibbles: d (q - 16) or d q + m
        one = tname == "Q5_1"
        b = raw.reshape(-1, 24 if one else 22)
        at = 4 if one else 2
        qh = b[:, at:at + 4].copy().view("<u4").astype(np.int64)  # [blocks, 1]
        q = b[:, at + 4:].astype(np.int64)
        j = np.arange(16)
        lo = (q & 15) | (((qh >> j) & 1) << 4)
        hi = (q >> 4) | (((qh >> (j + 16)) & 1) << 4)
        vals = np.concatenate([lo, hi], axis=1).astype(np.float64)
        if one:
            return (_f16(b[:, :2]) * vals + _f16(b[:, 2:4])).reshape(-1)
        return (_f16(b[:, :2]) * (vals - 16)).reshape(-1)
    if tname == "Q4_K":
        return _q4_k(raw.reshape(-1, 144))
    if tname == "Q5_K":
        return _q5_k(raw.reshape(-1, 176))
    if tname == "Q6_K":
        return _q6_k(raw.reshape(-1, 210))
    raise ValueError(f"type {tname} not supported by the reference")


def _k_scales(s):
    """The 8 six-bit (scale, min) pairs of a Q4_K/Q5_K super-block from its 12 bytes."""
    s = s.astype(np.int64)
    sc = np.zeros((s.shape[0], 8), np.int64)
    mn = np.zeros((s.shape[0], 8), np.int64)
    for j in range(8):
        if j < 4:
            sc[:, j] = s[:, j] & 63
            mn[:, j] = s[:, j + 4] & 63
        else:
            sc[:, j] = (s[:, j + 4] & 15) | ((s[:, j - 4] >> 6) << 4)
            mn[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
    return sc.astype(np.float64), mn.astype(np.float64)


def _q4_k(b):
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    sc, mn = _k_scales(b[:, 4:16])
    q = b[:, 16:144].reshape(-1, 4, 32)  # 4 chunks of 32 bytes: low nibbles sub-block 2c, high 2c+1
    out = np.empty((b.shape[0], 8, 32))
    for c in range(4):
        out[:, 2 * c] = q[:, c] & 15
        out[:, 2 * c + 1] = q[:, c] >> 4
    return (d[:, :, None] * sc[:, :, None] * out - dmin[:, :, None] * mn[:, :, None]).reshape(-1)


def _q5_k(b):
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    sc, mn = _k_scales(b[:, 4:16])
    qh = b[:, 16:48]
    q = b[:, 48:176].reshape(-1, 4, 32)
    out = np.empty((b.shape[0], 8, 32))
    for c in range(4):
        out[:, 2 * c] = (q[:, c] & 15) + 16 * ((qh >> (2 * c)) & 1)
        out[:, 2 * c + 1] = (q[:, c] >> 4) + 16 * ((qh >> (2 * c + 1)) & 1)
    return (d[:, :, None] * sc[:, :, None] * out - dmin[:, :, None] * mn[:, :, None]).reshape(-1)


def _q6_k(b):
    ql, qh = b[:, 0:128].astype(np.int64), b[:, 128:192].astype(np.int64)
    sc = b[:, 192:208].view(np.int8).astype(np.float64)
    d = _f16(b[:, 208:210])
    out = np.empty((b.shape[0], 256))
    for half in range(2):  # two halves of 128 values
        l, h = ql[:, 64 * half:64 * half + 64], qh[:, 32 * half:32 * half + 32]
        base = 128 * half
        for k in range(32):
            out[:, base + k] = ((l[:, k] & 15) | (((h[:, k] >> 0) & 3) << 4)) - 32
            out[:, base + k + 32] = ((l[:, k + 32] & 15) | (((h[:, k] >> 2) & 3) << 4)) - 32
            out[:, base + k + 64] = ((l[:, k] >> 4) | (((h[:, k] >> 4) & 3) << 4)) - 32
            out[:, base + k + 96] = ((l[:, k + 32] >> 4) | (((h[:, k] >> 6) & 3) << 4)) - 32
    scale = np.repeat(sc, 16, axis=1)
    return (d * scale * out).reshape(-1)


def _pack_value(v):
    """A new metadata value: str, bool, int (uint32) or float (float32)."""
    if isinstance(v, str):
        b = v.encode()
        return struct.pack("<IQ", 8, len(b)) + b
    if isinstance(v, bool):
        return struct.pack("<I?", 7, v)
    if isinstance(v, int):
        return struct.pack("<II", 4, v)
    return struct.pack("<If", 6, v)


def write_with_meta(src, dst, changes, arch=None, layers=None, fuse=(), extra=None, rename=None, raw=None):
    """dst: src with metadata keys set (value) or removed (None); with arch, the architecture
    renamed (general.architecture and every key under the old name); with layers, that many
    blocks, block i a copy of the source's block i % block_count; fuse: (name, [names]) of each
    block, tensors of one type stacked into one (rows after rows, as the converters fuse QKV);
    extra: {name: float32 array} added (its shape kept); rename: {name: new name, or None to drop
    it} (names after the layers are made); raw: {name: (dims, ggml type, bytes)} added as given.
    Tensor data as it was."""
    r = Reader(src)
    kv = r.kv_raw
    old = r.arch() + "."
    if arch:
        kv = [(arch + "." + k[len(old):] if k.startswith(old) else k, raw) for k, raw in kv if k != "general.architecture"]
        kv.append(("general.architecture", _pack_value(arch)))
    names = list(r.tensors)
    if layers:
        n0 = r.meta[old + "block_count"]
        kv = [(k, raw) for k, raw in kv if not k.endswith(".block_count")]
        kv.append(((arch or r.arch()) + ".block_count", _pack_value(layers)))
        names = [(n, n) for n in names if not n.startswith("blk.")]
        for i in range(layers):
            names += [(n.replace(f"blk.{i % n0}.", f"blk.{i}.", 1), n) for n in r.tensors if n.startswith(f"blk.{i % n0}.")]
    else:
        names = [(n, n) for n in names]
    for fused, parts in fuse:  # the parts' places taken by one tensor naming them all
        for i in range(layers or r.meta[old + "block_count"]):
            group = [(nn, sn) for nn, sn in names if nn in [f"blk.{i}.{p}" for p in parts]]
            group.sort(key=lambda e: parts.index(e[0].split(".", 2)[2]))
            at = names.index(group[0])
            names = [e for e in names if e not in group]
            names.insert(at, (f"blk.{i}.{fused}", [sn for _, sn in group]))
    names = [((rename or {}).get(nn, nn), sn) for nn, sn in names if (rename or {}).get(nn, nn) is not None]
    for name, vec in (extra or {}).items():
        a = np.asarray(vec, dtype="<f4")
        names.append((name, (list(reversed(a.shape)), 0, a.tobytes())))
    for name, (dims, t, blob) in (raw or {}).items():
        names.append((name, (list(dims), t, bytes(blob))))
    kv = [(k, raw) for k, raw in kv if k not in changes]
    kv += [(k, _pack_value(v)) for k, v in changes.items() if v is not None]
    align = r.meta.get("general.alignment", 32)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(names), len(kv))
    for k, raw in kv:
        kb = k.encode()
        head += struct.pack("<Q", len(kb)) + kb + raw
    data, off = [], 0
    for new, src_name in names:
        if isinstance(src_name, tuple):  # a tensor given whole
            dims, t, blob = src_name
        else:
            srcs = src_name if isinstance(src_name, list) else [src_name]
            infos = [r.tensors[n] for n in srcs]
            if len({i[1] for i in infos}) != 1 or len({i[0][0] for i in infos}) != 1:
                raise ValueError(f"{new}: parts of different types or row lengths cannot be fused")
            t = infos[0][1]
            dims = [infos[0][0][0], sum(i[0][1] for i in infos)] if len(srcs) > 1 else infos[0][0]
            be, bb = TYPES[t][1], TYPES[t][2]
            blob = b"".join(r.buf[i[2]:i[2] + int(np.prod(i[0])) // be * bb] for i in infos)
        size = len(blob)
        nb = new.encode()
        head += struct.pack("<Q", len(nb)) + nb + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        head += struct.pack("<IQ", t, off)
        pad = (-size) % align
        data.append(blob + b"\0" * pad)
        off += size + pad
    head += b"\0" * ((-len(head)) % align)
    with open(dst, "wb") as f:
        f.write(head + b"".join(data))
