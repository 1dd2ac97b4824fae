#!/usr/bin/env bash
# Collective HDF5 write bandwidth at 1 and 2 ranks against `dd` of the same size to the same disk,
# in the same run. The commit step (verify + sha256 for the manifest) is included, as in the stages.
# Usage: bench/h5_write_vs_dd.sh [MiB] [dir]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mib="${1:-512}"; dir="${2:-$here/build/bench-tmp}"
mkdir -p "$dir"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}"
dd_out=$(dd if=/dev/zero of="$dir/dd.bin" bs=1M count="$mib" 2>&1 | tail -1)
dd_s=$(echo "$dd_out" | sed -E 's/.* copied, ([0-9.]+) s.*/\1/')
dd_rate=$(python3 -c "print(f'{$mib/$dd_s:.1f}')")
echo "dd: $mib MiB in $dd_s s = $dd_rate MiB/s (baseline)"
rm -f "$dir/dd.bin"
for np in 1 2; do
  for deflate in 0 1; do
    line=$(mpirun --oversubscribe -n $np "$here/build/bench/bench_h5_write" "$dir/b.h5" "$mib" $deflate)
    rate=$(echo "$line" | awk '{print $NF}')
    echo "$line  ratio_vs_dd $(python3 -c "print(f'{$rate/$dd_rate:.2f}')")"
    rm -f "$dir/b.h5"
  done
done
