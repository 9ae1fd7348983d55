#!/usr/bin/python3
"""Plants a forged archive in a local store, as a store writer could: the one save in
STORE (made by a real post) gets its archive object replaced and its manifest's digest,
sizes and counts rewritten to match, in the format the current manifest parser accepts
(signing off).

usage: forge.py STORE ENTRY...   each ENTRY is TYPE:NAME[:MODE[:DATA]] with TYPE one of
         d (directory), f (file; DATA its content), l (symlink; DATA its target),
         h (hard link; DATA the earlier entry it names)
       forge.py --fifo STORE     the archive object becomes a fifo (nobody ever writes it)
"""
import glob, hashlib, io, json, os, subprocess, sys, tarfile


def the_manifest(store):
    found = glob.glob(os.path.join(store, "v1", "**", "*.json"), recursive=True)
    if len(found) != 1:
        sys.exit(f"forge.py: expected one manifest in {store}, found {len(found)}")
    return found[0]


def main():
    args = sys.argv[1:]
    fifo = args and args[0] == "--fifo"
    if fifo:
        args = args[1:]
    store, entries = args[0], args[1:]
    mpath = the_manifest(store)
    with open(mpath) as f:
        m = json.load(f)
    archive = os.path.join(store, m["archive"])
    os.remove(archive)
    if fifo:
        os.mkfifo(archive)
        return
    raw = io.BytesIO()
    unpacked = files = 0
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for spec in entries:
            parts = spec.split(":", 3)
            kind, name = parts[0], parts[1]
            mode = int(parts[2], 8) if len(parts) > 2 and parts[2] else 0o644
            data = parts[3] if len(parts) > 3 else ""
            info = tarfile.TarInfo(name)
            info.mode = mode
            info.mtime = 1000000000
            body = None
            if kind == "d":
                info.type = tarfile.DIRTYPE
            elif kind == "l":
                info.type, info.linkname = tarfile.SYMTYPE, data
            elif kind == "h":
                info.type, info.linkname = tarfile.LNKTYPE, data
                files += 1
            else:
                body = data.encode()
                info.size = len(body)
                unpacked += len(body)
                files += 1
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    packed = subprocess.run(["zstd", "-q", "-c"], input=raw.getvalue(), check=True,
                            stdout=subprocess.PIPE).stdout
    with open(archive, "wb") as f:
        f.write(packed)
    m["sha256"] = hashlib.sha256(packed).hexdigest()
    m["compressed_size"] = len(packed)
    m["unpacked_bytes"] = unpacked
    m["files"] = files
    with open(mpath, "w") as f:
        json.dump(m, f, indent=2, sort_keys=True)


main()
