"""Write `n` pseudo-random reads of a sample as FASTA; the sample name seeds the generator,
so every run (local or remote) produces the same bytes."""

import hashlib
import random
import sys

sample, n, length, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = random.Random(int(hashlib.sha256(sample.encode()).hexdigest(), 16))
with open(path, "w") as out:
    for i in range(n):
        read = "".join(rng.choice("ACGT") for _ in range(length))
        out.write(f">{sample}_{i}\n{read}\n")
print(f"wrote {n} reads for {sample}", file=sys.stderr)
