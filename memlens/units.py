"""Formatting of byte and parameter counts, done once at the edge (binary units)."""

from __future__ import annotations

_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(num_bytes: int) -> str:
    """``1536`` → ``'1.5 KiB'``; binary units, one decimal above bytes."""
    if num_bytes < 0:
        return "-" + format_bytes(-num_bytes)
    value = float(num_bytes)
    for unit in _BINARY_UNITS:
        if value < 1024 or unit == _BINARY_UNITS[-1]:
            return f"{num_bytes} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_count(count: int) -> str:
    """``43_100_000`` → ``'43.1M'``: parameter counts with decimal suffixes."""
    for divisor, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if abs(count) >= divisor:
            return f"{count / divisor:.1f}{suffix}"
    return str(count)
