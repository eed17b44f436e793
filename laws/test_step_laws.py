"""Every law that applies to mce's `Step`, on asyncio and on trio."""

from mce.laws import STEP, check_all_laws, step_instance

check_all_laws(STEP)
check_all_laws(step_instance(backend="trio", name="Step on trio"))
