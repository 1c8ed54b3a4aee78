"""Count k-mers of one sample's reads, splitting the reads between `threads` processes."""

from collections import Counter
from concurrent.futures import ProcessPoolExecutor

# `snakemake` is provided by the script: directive.
k = int(snakemake.params.k)  # noqa: F821


def count(reads):
    counts = Counter()
    for read in reads:
        for i in range(len(read) - k + 1):
            counts[read[i : i + k]] += 1
    return counts


with open(snakemake.input[0]) as f:  # noqa: F821
    reads = [line.strip() for line in f if not line.startswith(">")]

threads = snakemake.threads  # noqa: F821
with ProcessPoolExecutor(max_workers=threads) as pool:
    parts = pool.map(count, [reads[i::threads] for i in range(threads)])
    total = sum(parts, Counter())

sample = snakemake.wildcards.sample  # noqa: F821
with open(snakemake.output[0], "w") as out:  # noqa: F821
    for kmer, n in sorted(total.items()):
        out.write(f"{sample}\t{kmer}\t{n}\n")
with open(snakemake.log[0], "w") as log:  # noqa: F821
    log.write(f"{sample}: {len(reads)} reads, {len(total)} distinct {k}-mers, {threads} threads\n")
