# schema/persist.schema.json and 'ephemera check' agree on every stanza of the corpus in
# tests/data/persist: good/ must pass both, bad/ must fail both. The schema is checked
# with Debian's python3-jsonschema (Draft 2020-12) on the TOML read by Python's tomllib.
set -euo pipefail
: "${EPHEMERA:?EPHEMERA must name the binary}"
exec /usr/bin/python3 - "$EPHEMERA" "$SOURCE_ROOT" <<'PY'
import json, os, subprocess, sys, tempfile, tomllib
import jsonschema

ephemera, root = sys.argv[1], sys.argv[2]
schema = json.load(open(os.path.join(root, "schema", "persist.schema.json")))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
corpus = os.path.join(root, "tests", "data", "persist")

with tempfile.TemporaryDirectory() as tmp:
    job = os.path.join(tmp, "job.toml")
    with open(job, "w") as f:
        f.write('name = "job"\nvariety = "basic"\n')
    stanzas = disagreements = 0
    for verdict in ("good", "bad"):
        for name in sorted(os.listdir(os.path.join(corpus, verdict))):
            path = os.path.join(corpus, verdict, name)
            with open(path, "rb") as f:
                doc = tomllib.load(f)
            stanzas += len(doc.get("persist", []))
            errors = [e.message for e in validator.iter_errors(doc)]
            # A file holding only [[persist]] is a sibling persist file: check it beside a job.
            args = ["--persist", path, job] if set(doc) == {"persist"} else [path]
            run = subprocess.run([ephemera, "check", *args], capture_output=True, text=True)
            schema_ok, tool_ok = not errors, run.returncode == 0
            if run.returncode not in (0, 2):
                print(f"{verdict}/{name}: check exited {run.returncode}: {run.stderr}")
                disagreements += 1
            elif schema_ok != (verdict == "good") or tool_ok != (verdict == "good"):
                print(f"{verdict}/{name}: schema {'accepts' if schema_ok else 'refuses'} {errors[:1]}, "
                      f"check {'accepts' if tool_ok else 'refuses'} {run.stderr.strip()[:300]}")
                disagreements += 1
            elif not tool_ok and ":" not in run.stderr:
                print(f"{verdict}/{name}: check gave no position: {run.stderr}")
                disagreements += 1
    print(f"{stanzas} stanzas, {disagreements} disagreements")
    assert stanzas >= 40, "the corpus must hold at least 40 stanzas"
    sys.exit(1 if disagreements else 0)
PY
