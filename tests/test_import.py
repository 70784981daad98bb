import subprocess
import sys


def test_import_trouter_loads_nothing_heavy():
    code = (
        "import sys, trouter; "
        "heavy = [m for m in ('torch', 'pandas', 'sentence_transformers', 'openai', 'sqlalchemy') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
