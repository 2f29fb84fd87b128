/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C API our Rust abstractions use. bindgen reads this header at build
 * time (see the top-level Kbuild) with the kernel tree's own clang flags.
 *
 * Static inline functions and macros have no symbol to link against, so
 * helpers.c wraps each one we need in a real function; their prototypes are
 * declared here so that bindgen emits them too.
 */
#ifndef RUST_BINDINGS_HELPER_H
#define RUST_BINDINGS_HELPER_H

#include <linux/blk-mq.h>
#include <linux/blk-mq-pci.h>
#include <linux/blkdev.h>
#include <linux/completion.h>
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/errno.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/irq_poll.h>
#include <linux/jiffies.h>
#include <linux/kstrtox.h>
#include <linux/moduleparam.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/dmapool.h>

/* Constants bindgen cannot see through macros. */
extern const gfp_t RB_GFP_KERNEL;
extern const gfp_t RB_GFP_ATOMIC;

/* MMIO accessors: on x86 these are inline functions. */
u8 rb_readb(const volatile void __iomem *addr);
u16 rb_readw(const volatile void __iomem *addr);
u32 rb_readl(const volatile void __iomem *addr);
u64 rb_readq(const volatile void __iomem *addr);
void rb_writeb(u8 value, volatile void __iomem *addr);
void rb_writew(u16 value, volatile void __iomem *addr);
void rb_writel(u32 value, volatile void __iomem *addr);
void rb_writeq(u64 value, volatile void __iomem *addr);
u32 rb_readl_relaxed(const volatile void __iomem *addr);
void rb_writel_relaxed(u32 value, volatile void __iomem *addr);

/* Memory barriers for descriptor rings shared with a device. */
void rb_dma_rmb(void);
void rb_dma_wmb(void);

/* Device and PCI accessors that are macros or inline. */
void *rb_dev_get_drvdata(const struct device *dev);
void rb_dev_set_drvdata(struct device *dev, void *data);
resource_size_t rb_pci_resource_start(struct pci_dev *pdev, int bar);
resource_size_t rb_pci_resource_len(struct pci_dev *pdev, int bar);
unsigned long rb_pci_resource_flags(struct pci_dev *pdev, int bar);
bool rb_dev_is_pci(const struct device *dev);
struct pci_dev *rb_to_pci_dev(struct device *dev);
bool rb_driver_override_matches(struct device *dev);

/* DMA. */
int rb_dma_set_mask_and_coherent(struct device *dev, u64 mask);
int rb_dma_mapping_error(struct device *dev, dma_addr_t addr);
dma_addr_t rb_dma_map_single(struct device *dev, void *ptr, size_t size,
			     enum dma_data_direction dir);
void rb_dma_unmap_single(struct device *dev, dma_addr_t addr, size_t size,
			 enum dma_data_direction dir);
void rb_dma_sync_single_for_cpu(struct device *dev, dma_addr_t addr,
				size_t size, enum dma_data_direction dir);
void rb_dma_sync_single_for_device(struct device *dev, dma_addr_t addr,
				   size_t size, enum dma_data_direction dir);

/* IRQ. */
int rb_request_irq(unsigned int irq, irq_handler_t handler,
		   unsigned long flags, const char *name, void *dev);

/* Completion. */
void rb_init_completion(struct completion *c);
void rb_reinit_completion(struct completion *c);

/* blk-mq accessors that are inline. */
void *rb_blk_mq_rq_to_pdu(struct request *rq);
bool rb_blk_mq_add_to_batch(struct request *rq, struct io_comp_batch *iob, bool is_error,
			    void (*complete)(struct io_comp_batch *));
struct request *rb_iob_first(struct io_comp_batch *iob);
struct request *rb_rq_next(struct request *rq);
struct request *rb_blk_mq_rq_from_pdu(void *pdu);
struct request *rb_blk_mq_tag_to_rq(struct blk_mq_tags *tags, unsigned int tag);
sector_t rb_blk_rq_pos(const struct request *rq);
unsigned int rb_blk_rq_bytes(const struct request *rq);
unsigned short rb_blk_rq_nr_phys_segments(struct request *rq);
int rb_blk_rq_map_sg(struct request_queue *q, struct request *rq, struct scatterlist *sglist);
struct gendisk *rb_blk_mq_alloc_disk(struct blk_mq_tag_set *set, struct queue_limits *lim, void *queuedata);
void rb_sg_init_table(struct scatterlist *sgl, unsigned int nents);
dma_addr_t rb_sg_dma_address(struct scatterlist *sg);
unsigned int rb_sg_dma_len(struct scatterlist *sg);
struct scatterlist *rb_sg_next(struct scatterlist *sg);
dma_addr_t rb_blk_rq_map_single_bvec(struct device *dev, struct request *rq,
				     enum dma_data_direction dir, unsigned int *len);

/* CPUs. */
unsigned int rb_num_online_cpus(void);
void rb_udelay(unsigned long usecs);

/* Time. */
unsigned long rb_msecs_to_jiffies(unsigned int ms);

/* net (rena): net_device, NAPI, sk_buff, ethtool, timers, lib/dim. */
#include <linux/dim.h>
#include <linux/etherdevice.h>
#include <linux/ethtool.h>
#include <linux/if_vlan.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <linux/skbuff.h>
#include <linux/tcp.h>
#include <linux/timer.h>
#include <linux/udp.h>
#include <linux/u64_stats_sync.h>
#include <net/ip6_checksum.h>
#include <net/netdev_queues.h>

void *rb_netdev_priv(const struct net_device *dev);
unsigned int rb_netdev_num_tx_queues(const struct net_device *dev);
void rb_netdev_setup(struct net_device *dev, struct device *parent,
		     const struct net_device_ops *ops, const struct ethtool_ops *eops,
		     unsigned int max_mtu, bool tx_csum, bool rx_csum, bool tso4, bool tso6);
void rb_netdev_set_mac(struct net_device *dev, const u8 *mac);
unsigned int rb_netdev_mtu(const struct net_device *dev);
bool rb_netdev_rx_csum_enabled(const struct net_device *dev);
void rb_netdev_set_mtu(struct net_device *dev, unsigned int mtu);
bool rb_netif_running(const struct net_device *dev);
bool rb_netif_carrier_ok(const struct net_device *dev);
void rb_netif_stop_subqueue(struct net_device *dev, u16 q);
void rb_netif_wake_subqueue(struct net_device *dev, u16 q);
bool rb_netif_subqueue_stopped(struct net_device *dev, u16 q);
void rb_netif_tx_disable(struct net_device *dev);
void rb_netif_tx_wake_all_queues(struct net_device *dev);
void rb_netdev_tx_sent_queue(struct net_device *dev, u16 q, unsigned int bytes);
void rb_netdev_tx_completed_queue(struct net_device *dev, u16 q, unsigned int pkts,
				  unsigned int bytes);
void rb_netdev_tx_reset_queue(struct net_device *dev, u16 q);
bool rb_netdev_xmit_more(void);
unsigned long rb_netdev_trans_start_age_ms(struct net_device *dev, u16 q);
int rb_netdev_set_real_num_queues(struct net_device *dev, unsigned int n);
unsigned int rb_netdev_real_num_rx_queues(const struct net_device *dev);
unsigned int rb_netdev_real_num_tx_queues(const struct net_device *dev);
void rb_netdev_set_stat_ops(struct net_device *dev, const struct netdev_stat_ops *ops);

bool rb_napi_schedule(struct napi_struct *napi);
void rb_local_bh_disable(void);
void rb_local_bh_enable(void);
struct net_device *rb_napi_dev(struct napi_struct *napi);
void rb_netif_napi_del(struct napi_struct *napi);

void rb_dev_kfree_skb_any(struct sk_buff *skb);
unsigned int rb_skb_len(const struct sk_buff *skb);
unsigned int rb_skb_headlen(const struct sk_buff *skb);
unsigned int rb_skb_nr_frags(const struct sk_buff *skb);
u16 rb_skb_queue_mapping(const struct sk_buff *skb);
int rb_skb_linearize(struct sk_buff *skb);
int rb_skb_padto(struct sk_buff *skb, unsigned int len);
int rb_skb_checksum_help(struct sk_buff *skb);
void rb_skb_tx_timestamp(struct sk_buff *skb);
/* TX checksum request: returns 0 none, else fills proto info; -1 = unsupported. */
bool rb_skb_is_gso(const struct sk_buff *skb);
struct sk_buff *rb_rx_page_copy_skb(struct napi_struct *napi, struct device *dev,
				    struct page *page, dma_addr_t dma, unsigned int off,
				    unsigned int len);
int rb_skb_tx_csum(struct sk_buff *skb, u8 *l3, u8 *l4, u8 *l3_off, u8 *l3_len, u8 *l4_len,
		   u16 *mss);
dma_addr_t rb_skb_map_head(struct device *dev, struct sk_buff *skb);
dma_addr_t rb_skb_map_frag(struct device *dev, struct sk_buff *skb, unsigned int i,
			   unsigned int *len);
void rb_dma_unmap_page(struct device *dev, dma_addr_t addr, size_t size,
		       enum dma_data_direction dir);

unsigned int rb_rx_buf_len(void);
struct page *rb_rx_page_alloc(struct device *dev, dma_addr_t *dma);
void rb_rx_page_free(struct device *dev, struct page *page, dma_addr_t dma);
struct sk_buff *rb_rx_page_build_skb(struct device *dev, struct page *page, dma_addr_t dma,
				     unsigned int off, unsigned int len);
void rb_rx_page_add_frag(struct device *dev, struct sk_buff *skb, struct page *page,
			 dma_addr_t dma, unsigned int len);
void rb_skb_rx_finish(struct sk_buff *skb, struct net_device *dev, u16 queue, u32 hash,
		      bool hash_l4, bool csum_ok);

void rb_ethtool_drvinfo(struct net_device *dev, struct ethtool_drvinfo *info,
			const char *driver);

void rb_timer_setup(struct timer_list *timer, void (*fn)(struct timer_list *));
unsigned long rb_jiffies(void);
u64 rb_jiffies64_ms(void);

void rb_dim_init(struct dim *dim);
void rb_dim_update(struct dim *dim, u16 event_ctr, u64 packets, u64 bytes);
u16 rb_dim_rx_usecs(struct dim *dim);
void rb_dim_cancel(struct dim *dim);
bool rb_flush_work(struct work_struct *work);

/* u64_stats_sync.h: all static inline. */
void rb_u64_stats_init(struct u64_stats_sync *syncp);
void rb_u64_stats_update_begin(struct u64_stats_sync *syncp);
void rb_u64_stats_update_end(struct u64_stats_sync *syncp);
unsigned int rb_u64_stats_fetch_begin(const struct u64_stats_sync *syncp);
bool rb_u64_stats_fetch_retry(const struct u64_stats_sync *syncp, unsigned int start);
u64 rb_u64_stats_read(const u64_stats_t *p);
void rb_u64_stats_add(u64_stats_t *p, u64 v);

#endif /* RUST_BINDINGS_HELPER_H */
