"""Concatenate the per-sample k-mer counts into one table, sorted for a stable result."""

rows = []
for path in snakemake.input:  # noqa: F821
    with open(path) as f:
        rows.extend(line.rstrip("\n").split("\t") for line in f if line.strip())
rows.sort()
with open(snakemake.output[0], "w") as out:  # noqa: F821
    out.write("".join("\t".join(row) + "\n" for row in rows))
with open(snakemake.log[0], "w") as log:  # noqa: F821
    log.write(f"merged {len(rows)} rows from {len(snakemake.input)} samples\n")  # noqa: F821
