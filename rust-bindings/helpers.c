// SPDX-License-Identifier: GPL-2.0
/*
 * Real functions for the static inline functions and macros that the Rust
 * abstractions call. Each driver module links its own copy (see the driver's
 * *_helpers.c), so none of these symbols is exported.
 */
#include "bindings_helper.h"

const gfp_t RB_GFP_KERNEL = GFP_KERNEL;
const gfp_t RB_GFP_ATOMIC = GFP_ATOMIC;

u8 rb_readb(const volatile void __iomem *addr) { return readb(addr); }
u16 rb_readw(const volatile void __iomem *addr) { return readw(addr); }
u32 rb_readl(const volatile void __iomem *addr) { return readl(addr); }
u64 rb_readq(const volatile void __iomem *addr) { return readq(addr); }
void rb_writeb(u8 value, volatile void __iomem *addr) { writeb(value, addr); }
void rb_writew(u16 value, volatile void __iomem *addr) { writew(value, addr); }
void rb_writel(u32 value, volatile void __iomem *addr) { writel(value, addr); }
void rb_writeq(u64 value, volatile void __iomem *addr) { writeq(value, addr); }
u32 rb_readl_relaxed(const volatile void __iomem *addr) { return readl_relaxed(addr); }
void rb_writel_relaxed(u32 value, volatile void __iomem *addr) { writel_relaxed(value, addr); }

void rb_dma_rmb(void) { dma_rmb(); }
void rb_dma_wmb(void) { dma_wmb(); }

void *rb_dev_get_drvdata(const struct device *dev) { return dev_get_drvdata(dev); }
void rb_dev_set_drvdata(struct device *dev, void *data) { dev_set_drvdata(dev, data); }

resource_size_t rb_pci_resource_start(struct pci_dev *pdev, int bar)
{
	return pci_resource_start(pdev, bar);
}

resource_size_t rb_pci_resource_len(struct pci_dev *pdev, int bar)
{
	return pci_resource_len(pdev, bar);
}

unsigned long rb_pci_resource_flags(struct pci_dev *pdev, int bar)
{
	return pci_resource_flags(pdev, bar);
}

bool rb_dev_is_pci(const struct device *dev) { return dev_is_pci(dev); }
struct pci_dev *rb_to_pci_dev(struct device *dev) { return to_pci_dev(dev); }

bool rb_driver_override_matches(struct device *dev)
{
	return dev->driver && device_match_driver_override(dev, dev->driver) > 0;
}

int rb_dma_set_mask_and_coherent(struct device *dev, u64 mask)
{
	return dma_set_mask_and_coherent(dev, mask);
}

int rb_dma_mapping_error(struct device *dev, dma_addr_t addr)
{
	return dma_mapping_error(dev, addr);
}

dma_addr_t rb_dma_map_single(struct device *dev, void *ptr, size_t size,
			     enum dma_data_direction dir)
{
	return dma_map_single(dev, ptr, size, dir);
}

void rb_dma_unmap_single(struct device *dev, dma_addr_t addr, size_t size,
			 enum dma_data_direction dir)
{
	dma_unmap_single(dev, addr, size, dir);
}

void rb_dma_sync_single_for_cpu(struct device *dev, dma_addr_t addr,
				size_t size, enum dma_data_direction dir)
{
	dma_sync_single_for_cpu(dev, addr, size, dir);
}

void rb_dma_sync_single_for_device(struct device *dev, dma_addr_t addr,
				   size_t size, enum dma_data_direction dir)
{
	dma_sync_single_for_device(dev, addr, size, dir);
}

int rb_request_irq(unsigned int irq, irq_handler_t handler,
		   unsigned long flags, const char *name, void *dev)
{
	return request_irq(irq, handler, flags, name, dev);
}

void rb_init_completion(struct completion *c) { init_completion(c); }
void rb_reinit_completion(struct completion *c) { reinit_completion(c); }

unsigned int rb_num_online_cpus(void) { return num_online_cpus(); }

unsigned long rb_msecs_to_jiffies(unsigned int ms) { return msecs_to_jiffies(ms); }

/*
 * rust-bindings/block/mq.rs uses these values as Rust constants (the C
 * macros are casts bindgen cannot evaluate); fail the build if they change.
 */
static_assert((__force u8)BLK_STS_OK == 0);
static_assert((__force u8)BLK_STS_NOTSUPP == 1);
static_assert((__force u8)BLK_STS_TIMEOUT == 2);
static_assert((__force u8)BLK_STS_NOSPC == 3);
static_assert((__force u8)BLK_STS_TARGET == 5);
static_assert((__force u8)BLK_STS_MEDIUM == 7);
static_assert((__force u8)BLK_STS_PROTECTION == 8);
static_assert((__force u8)BLK_STS_RESOURCE == 9);
static_assert((__force u8)BLK_STS_IOERR == 10);
static_assert((__force u8)BLK_STS_DEV_RESOURCE == 13);
static_assert((__force u32)REQ_FUA == 1u << 17);
static_assert((__force u32)REQ_OP_MASK == 0xff);
static_assert((__force u32)BLK_FEAT_WRITE_CACHE == 1u << 0);
static_assert((__force u32)BLK_FEAT_FUA == 1u << 1);
static_assert((__force u32)BLK_FEAT_POLL == 1u << 9);

void *rb_blk_mq_rq_to_pdu(struct request *rq) { return blk_mq_rq_to_pdu(rq); }
struct request *rb_blk_mq_rq_from_pdu(void *pdu) { return blk_mq_rq_from_pdu(pdu); }

struct request *rb_blk_mq_tag_to_rq(struct blk_mq_tags *tags, unsigned int tag)
{
	return blk_mq_tag_to_rq(tags, tag);
}

sector_t rb_blk_rq_pos(const struct request *rq) { return blk_rq_pos(rq); }
unsigned int rb_blk_rq_bytes(const struct request *rq) { return blk_rq_bytes(rq); }

unsigned short rb_blk_rq_nr_phys_segments(struct request *rq)
{
	return blk_rq_nr_phys_segments(rq);
}

int rb_blk_rq_map_sg(struct request_queue *q, struct request *rq, struct scatterlist *sglist)
{
	return blk_rq_map_sg(q, rq, sglist);
}

struct gendisk *rb_blk_mq_alloc_disk(struct blk_mq_tag_set *set, struct queue_limits *lim,
				     void *queuedata)
{
	return blk_mq_alloc_disk(set, lim, queuedata);
}

void rb_sg_init_table(struct scatterlist *sgl, unsigned int nents) { sg_init_table(sgl, nents); }
dma_addr_t rb_sg_dma_address(struct scatterlist *sg) { return sg_dma_address(sg); }
unsigned int rb_sg_dma_len(struct scatterlist *sg) { return sg_dma_len(sg); }
struct scatterlist *rb_sg_next(struct scatterlist *sg) { return sg_next(sg); }
