"""Print which laws kill each mutant, and the kill rate (for docs/laws.md).

python -m laws.mutants.report
"""

from __future__ import annotations

from mce.laws import broken_laws

from .mutants import MUTANTS


def main() -> None:
    killed = 0
    print("| mutant | laws that catch it |")
    print("|---|---|")
    for mutant in MUTANTS:
        broken = broken_laws(mutant, max_examples=100)
        killed += bool(broken)
        print(f"| {mutant.name} | {'; '.join(broken) or '**survives**'} |")
    print(f"\nKill rate: {killed}/{len(MUTANTS)} ({100 * killed / len(MUTANTS):.0f}%)")


if __name__ == "__main__":
    main()
