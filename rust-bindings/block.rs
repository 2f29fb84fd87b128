// SPDX-License-Identifier: GPL-2.0

//! Block device support.

pub mod mq;
