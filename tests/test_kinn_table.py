"""scripts/kinn_table.py's table: mean ± std over seeds next to KINN's figures, from results files."""
import json
import sys


def record(example, seed, kan, mlp):
    return {"example": example, "seed": seed, "errors": {"kan": {"rel_l2/u": kan}, "mlp": {"rel_l2/u": mlp}},
            "params": {"kan": 600, "mlp": 609}, "time_per_step": {"kan": 2.0, "mlp": 1.0}}


def test_aggregate_prints_the_table_and_later_files_replace_earlier_pairs(load_script, tmp_path, capsys, monkeypatch):
    kt = load_script("kinn_table")
    koch = [k for k, e in enumerate(kt.EXAMPLES) if e[:2] == ("koch_snowflake", "energy")][0]
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("\n".join(json.dumps(record(koch, s, 1.0, 2.0)) for s in (0, 1)) + "\n")
    second.write_text(json.dumps(record(koch, 1, 3.0, 4.0)) + "\n")  # seed 1 re-run
    monkeypatch.setattr(sys, "argv", ["kinn_table.py", "--aggregate", str(first), str(second)])
    kt.main()
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| koch_snowflake | energy")]
    # MLP: seeds 2.0 and 4.0; KAN: 1.0 and 3.0 (std with ddof=1: 1.41); KINN's 1.28e-2 and 1.56e-2 beside them
    assert row == ["| koch_snowflake | energy | u | 3.00e+00 ± 1.4e+00 | 1.28e-02 | 2.00e+00 ± 1.4e+00 | 1.56e-02 | 2 | "
                   "600 / 609 | 2.0 |"]
