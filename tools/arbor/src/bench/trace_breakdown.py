#!/usr/bin/env python3
"""Where the instructions of a timed benchmark operation go, by function.

Not part of the `arbor` tool: the method behind the per-phase breakdown in
tools/arbor/BENCH.md. Input is a QEMU trace of every executed guest
instruction, made with a TCG translation block of one instruction each:

    qemu-system-x86_64 ... (the bench scenario's command line) \\
        -accel tcg -cpu max -icount shift=0,align=off,sleep=off \\
        -singlestep -d exec,nochain -D trace.log

(`-singlestep` is QEMU 7.2's spelling of `-accel tcg,one-insn-per-tb=on`.)
Each `Trace` line then names one retired instruction's address. A sample
starts at the `rdtsc` that opens a timed operation in bench_core and ends at
the `rdtsc` that closes it, so each sample's length is the figure bench_core
prints. Addresses are named from the ELF symbols of the kernel (the upper
half) and of bench_core and bench_partner (user code: the first user segment
of a sample is bench_core, the one after the first kernel entry is
bench_partner, and so on).

usage: trace_breakdown.py RELEASE_DIR TRACE_LOG NAME:START_RDTSC:END_RDTSC ...
(addresses in hex, from `objdump -d RELEASE_DIR/bench_core | grep rdtsc`).
The second half of each operation's samples (after bench_core's warm-up)
is averaged; a NAME of `ipc` is split into its two figures (ipc_roundtrip,
then ipc_roundtrip_3584, which the same code measures).
"""
import bisect
import collections
import re
import subprocess
import sys

KERNEL_HALF = 0xFFFF_8000_0000_0000


def symbols(path):
    out = subprocess.run(["nm", "-n", "-C", path], capture_output=True, text=True, check=True).stdout
    table = []
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            table.append((int(parts[0], 16), re.sub(r"::h[0-9a-f]{16}$", "", parts[2])))
    return [a for a, _ in table], [n for _, n in table]


def inlined_names(path, pcs):
    """Each address's innermost function, inlined ones included (from the
    ELF's line tables: the kernel is built with them), by `addr2line -i`."""
    pcs = sorted(pcs)
    if not pcs:
        return {}
    out = subprocess.run(
        ["addr2line", "-a", "-f", "-i", "-C", "-e", path] + [hex(pc) for pc in pcs],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    names, current, first = {}, None, False
    for line in out:
        if line.startswith("0x"):
            current, first = int(line, 16), True
        elif first and current is not None:
            # The first function after an address is the innermost.
            names[current] = re.sub(r"<impl [^>]*>", "<impl>", line)[-80:]
            first = False
    return names


def name(table, pc):
    addresses, names = table
    i = bisect.bisect_right(addresses, pc) - 1
    return names[i] if i >= 0 else hex(pc)


def main():
    release, log = sys.argv[1], sys.argv[2]
    kernel = symbols(release + "/arbor-kernel")
    core = symbols(release + "/bench_core")
    partner = symbols(release + "/bench_partner")
    starts = {}
    for spec in sys.argv[3:]:
        label, start, end = spec.split(":")
        starts[int(start, 16)] = (label, int(end, 16))
    pattern = re.compile(r"\[[0-9a-f]+/([0-9a-f]+)/")
    samples = collections.defaultdict(list)
    current = None
    with open(log, errors="replace") as trace:
        for line in trace:
            match = pattern.search(line)
            if not match:
                continue
            pc = int(match.group(1), 16)
            if current is None:
                if pc in starts:
                    current = (starts[pc][0], starts[pc][1], [pc])
                continue
            current[2].append(pc)
            if pc == current[1]:
                samples[current[0]].append(current[2])
                current = None
    groups = []
    for label, runs in samples.items():
        if label == "ipc":
            half = len(runs) // 2
            groups += [("ipc_roundtrip", runs[:half]), ("ipc_roundtrip_3584", runs[half:])]
        else:
            groups.append((label, runs))
    kernel_pcs = {pc for _, runs in groups for pcs in runs for pc in pcs if pc >= KERNEL_HALF}
    inlined = inlined_names(release + "/arbor-kernel", kernel_pcs)
    for label, runs in groups:
        timed = runs[len(runs) // 2:]
        counts = collections.Counter()
        phases = collections.Counter()
        for pcs in timed:
            segment, in_kernel = 0, False
            for pc in pcs[:-1]:
                kernel_pc = pc >= KERNEL_HALF
                if kernel_pc != in_kernel:
                    segment, in_kernel = segment + 1, kernel_pc
                if kernel_pc:
                    counts["kernel  " + name(kernel, pc)] += 1
                    phases["kernel  " + inlined.get(pc, hex(pc))] += 1
                elif segment % 4 == 2:
                    counts["partner " + name(partner, pc)] += 1
                else:
                    counts["core    " + name(core, pc)] += 1
        lengths = sorted(len(pcs) - 1 for pcs in timed)
        print(f"== {label}: {len(timed)} samples, median {lengths[len(lengths) // 2]} instructions")
        for function, count in counts.most_common():
            if count / len(timed) >= 0.5:
                print(f"{count / len(timed):8.1f}  {function}")
        print(f"-- {label}: kernel instructions by innermost (inlined) function")
        for function, count in phases.most_common():
            if count / len(timed) >= 0.5:
                print(f"{count / len(timed):8.1f}  {function}")


if __name__ == "__main__":
    main()
