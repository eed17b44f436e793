"""Every transformer of mce.transformers over Identity and Async, both State/Either orders."""

from mce.laws import check_all_laws, reference_instances

for instance in reference_instances():
    check_all_laws(instance)
