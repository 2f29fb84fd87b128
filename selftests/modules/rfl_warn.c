// SPDX-License-Identifier: GPL-2.0
/*
 * Provokes one WARN when loaded. Used only by the runner's own test: a guest
 * whose kernel log has a WARN must make qemu-test/vm fail even though the
 * command (insmod) succeeded.
 */
#include <linux/bug.h>
#include <linux/module.h>

static int __init rfl_warn_init(void)
{
	WARN(1, "rfl_warn: deliberate warning for the runner's self-test\n");
	return 0;
}

static void __exit rfl_warn_exit(void)
{
}

module_init(rfl_warn_init);
module_exit(rfl_warn_exit);
MODULE_DESCRIPTION("Provokes a WARN to test the guest runner");
MODULE_LICENSE("GPL");
