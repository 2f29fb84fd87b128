// SPDX-License-Identifier: GPL-2.0
/* This module's copy of the rust-bindings C helpers (they are not exported). */
#include "../../rust-bindings/helpers.c"
