"""Independent zigzag barcodes from Dionysus 2 and standard barcodes from GUDHI, in lmtopo's
conventions (closed intervals of 1-based operation indices; bars alive at the end close at m)."""
import math


def parse_fzz(text):
    ops = []
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] not in ("i", "d"):
            continue  # the optional count line
        ops.append((parts[0] == "i", tuple(sorted(int(v) for v in parts[1:]))))
    return ops


def dionysus_bars(ops):
    import dionysus as d

    times, order = {}, []
    for k, (_, s) in enumerate(ops, start=1):
        if s not in times:
            times[s] = []
            order.append(s)
        times[s].append(k)  # op k happens at time k; a simplex alternates insert, delete, ...
    f = d.Filtration([d.Simplex(list(s)) for s in order])
    tl = [times[tuple(sorted(s))] for s in f]
    _, dgms, _ = d.zigzag_homology_persistence(f, tl)
    m = len(ops)
    bars = []
    for dim, dgm in enumerate(dgms):
        for p in dgm:
            # Dionysus reports [birth, death) in time; the closed op interval is [birth, death-1].
            death = m if math.isinf(p.death) else int(p.death) - 1
            bars.append((dim, int(p.birth), death))
    return sorted(bars)


def gudhi_standard_bars(ops):
    """Insert-only filtration: persistence by GUDHI's simplex tree, with filtration value = op index."""
    import gudhi

    st = gudhi.SimplexTree()
    for k, (ins, s) in enumerate(ops, start=1):
        assert ins
        st.insert(list(s), filtration=float(k))
    m = len(ops)
    bars = []
    for dim, (b, dth) in st.persistence(homology_coeff_field=2, persistence_dim_max=True):
        death = m if math.isinf(dth) else int(dth) - 1
        if int(b) <= death:
            bars.append((dim, int(b), death))
    return sorted(bars)


def random_zigzag(rng, vertices, max_dim, steps, p_delete):
    present, ops = set(), []
    for _ in range(steps):
        if present and rng.random() < p_delete:
            maximal = [s for s in present
                       if not any(len(t) == len(s) + 1 and set(s) <= set(t) for t in present)]
            victim = rng.choice(sorted(maximal))
            ops.append((False, victim))
            present.remove(victim)
            continue
        dim = rng.randint(0, min(max_dim, vertices - 1))
        s = tuple(sorted(rng.sample(range(vertices), dim + 1)))
        if s in present:
            continue
        if len(s) > 1 and not all(s[:i] + s[i + 1:] in present for i in range(len(s))):
            continue
        ops.append((True, s))
        present.add(s)
    return ops


def write_fzz(path, ops, with_count=True):
    with open(path, "w") as f:
        if with_count:
            f.write(f"{len(ops)}\n")
        for ins, s in ops:
            f.write(("i " if ins else "d ") + " ".join(map(str, s)) + "\n")


def read_bars(path):
    with open(path) as f:
        return sorted(tuple(int(x) for x in line.split()) for line in f if line.strip())
