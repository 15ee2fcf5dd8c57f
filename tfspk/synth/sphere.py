"""NIST SPHERE files with the header TIMIT ships: 1024-byte ASCII header, 16-bit LE PCM."""
import numpy as np

HEADER_BYTES = 1024


def sphere_header(num_samples, sample_rate, utterance_id, samples=None,
                  database_id="TFSPK-SYNTH", database_version="1.0"):
    """The header text TIMIT's .WAV files carry (same fields, same order)."""
    fields = [("database_id", database_id), ("database_version", database_version),
              ("utterance_id", utterance_id), ("channel_count", 1),
              ("sample_count", num_samples), ("sample_rate", sample_rate)]
    if samples is not None and len(samples):
        fields += [("sample_min", int(samples.min())), ("sample_max", int(samples.max()))]
    fields += [("sample_n_bytes", 2), ("sample_byte_format", "01"), ("sample_sig_bits", 16)]
    lines = ["NIST_1A", f"{HEADER_BYTES:7d}"]
    for name, value in fields:
        lines.append(f"{name} -i {value}" if isinstance(value, int)
                     else f"{name} -s{len(value)} {value}")
    text = "\n".join(lines + ["end_head"]) + "\n"
    if len(text) > HEADER_BYTES:
        raise ValueError(f"SPHERE header for {utterance_id!r} exceeds {HEADER_BYTES} bytes")
    return text.encode("ascii").ljust(HEADER_BYTES, b" ")


def write_sphere(path, samples, sample_rate, utterance_id):
    """Write int16 `samples` to `path` as a TIMIT-style NIST SPHERE file."""
    samples = np.asarray(samples)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError(f"{path}: SPHERE writer wants 1-D int16 samples, got "
                         f"{samples.dtype} with shape {samples.shape}")
    with open(path, "wb") as handle:
        handle.write(sphere_header(len(samples), sample_rate, utterance_id, samples))
        handle.write(samples.astype("<i2").tobytes())


def read_sphere_header(path):
    """The header fields of a SPHERE file as a dict (ints for -i fields)."""
    with open(path, "rb") as handle:
        head = handle.read(HEADER_BYTES).decode("ascii")
    lines = head.split("\n")
    if lines[0] != "NIST_1A":
        raise ValueError(f"{path}: not a NIST SPHERE file (first line {lines[0]!r})")
    fields = {}
    for line in lines[2:]:
        if line.strip() == "end_head":
            return fields
        name, kind, value = line.split(" ", 2)
        fields[name] = int(value) if kind == "-i" else value
    raise ValueError(f"{path}: SPHERE header has no end_head")
