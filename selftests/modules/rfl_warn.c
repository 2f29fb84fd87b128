// SPDX-License-Identifier: GPL-2.0
/*
 * The guest runner's own test module: it provokes, on purpose, each kind of
 * trouble qemu-test/vm must notice even when the command succeeded.
 *
 *   insmod rfl_warn.ko                   one WARN on load (the default)
 *   insmod rfl_warn.ko warn=0 leak=N     leaks N small allocations: the
 *                                        end-of-run kmemleak scan must name
 *                                        this module, loaded or not
 *   insmod rfl_warn.ko warn=0 hang_at_shutdown=1
 *                                        a reboot notifier that never
 *                                        returns: the guest cannot power off
 *
 * Used only by the runner's self-tests (scripts/check, "# guest runner").
 */
#include <linux/bug.h>
#include <linux/delay.h>
#include <linux/module.h>
#include <linux/reboot.h>
#include <linux/slab.h>

static bool warn = true;
module_param(warn, bool, 0444);
MODULE_PARM_DESC(warn, "WARN once on load (default 1)");

static uint leak;
module_param(leak, uint, 0444);
MODULE_PARM_DESC(leak, "allocations to leak on load (default 0)");

static bool hang_at_shutdown;
module_param(hang_at_shutdown, bool, 0444);
MODULE_PARM_DESC(hang_at_shutdown, "block power-off forever in a reboot notifier (default 0)");

/*
 * Not __init: kmemleak records the allocating backtrace and prints it at
 * scan time, when .init.text is long gone and its frames would not resolve
 * to this module.
 */
static noinline void rfl_leak_one(uint i)
{
	void *p = kmalloc(64, GFP_KERNEL);

	/* Something recognisable in kmemleak's hex dump; the pointer is dropped. */
	if (p)
		memset(p, 0xa5 ^ (i & 0xff), 64);
}

static int rfl_hang_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	pr_info("rfl_warn: blocking power-off in a reboot notifier, as asked\n");
	/* Sleep, not spin: the hang must be visible without stalling a CPU. */
	for (;;)
		msleep(1000);
	return NOTIFY_DONE;
}

static struct notifier_block rfl_hang_nb = {
	.notifier_call = rfl_hang_notify,
};

static int __init rfl_warn_init(void)
{
	uint i;

	WARN(warn, "rfl_warn: deliberate warning for the runner's self-test\n");
	for (i = 0; i < leak; i++)
		rfl_leak_one(i);
	if (leak)
		pr_info("rfl_warn: leaked %u allocations of 64 bytes, as asked\n", leak);
	if (hang_at_shutdown)
		return register_reboot_notifier(&rfl_hang_nb);
	return 0;
}

static void __exit rfl_warn_exit(void)
{
	if (hang_at_shutdown)
		unregister_reboot_notifier(&rfl_hang_nb);
}

module_init(rfl_warn_init);
module_exit(rfl_warn_exit);
MODULE_DESCRIPTION("Provokes a WARN, a leak or a power-off hang to test the guest runner");
MODULE_LICENSE("GPL");
