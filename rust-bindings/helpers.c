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
void rb_udelay(unsigned long usecs) { udelay(usecs); }

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

bool rb_blk_mq_add_to_batch(struct request *rq, struct io_comp_batch *iob, bool is_error,
			    void (*complete)(struct io_comp_batch *))
{
	return blk_mq_add_to_batch(rq, iob, is_error, complete);
}

struct request *rb_iob_first(struct io_comp_batch *iob) { return rq_list_peek(&iob->req_list); }
struct request *rb_rq_next(struct request *rq) { return rq->rq_next; }
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

/*
 * Maps the data of a one-segment request as its first bio_vec, without a
 * scatterlist. Returns the bus address and its length in *len, or
 * DMA_MAPPING_ERROR (all ones).
 */
dma_addr_t rb_blk_rq_map_single_bvec(struct device *dev, struct request *rq,
				     enum dma_data_direction dir, unsigned int *len)
{
	struct bio_vec bv = req_bvec(rq);
	dma_addr_t addr = dma_map_bvec(dev, &bv, dir, 0);

	if (dma_mapping_error(dev, addr))
		return DMA_MAPPING_ERROR;
	*len = bv.bv_len;
	return addr;
}


/* net (rena): net_device, NAPI, sk_buff, ethtool, timers, lib/dim. */
/* rust-bindings/net.rs and skb.rs use these values as Rust constants. */
static_assert((ETHTOOL_COALESCE_USECS | ETHTOOL_COALESCE_USE_ADAPTIVE_RX) == 0x211);
static_assert(ETH_GSTRING_LEN == 32);
static_assert(ETH_SS_STATS == 1);
static_assert(ETH_RSS_HASH_TOP == 1 && ETH_RSS_HASH_NO_CHANGE == 0);
static_assert(MAX_SKB_FRAGS == 17);
static_assert(NETDEV_TX_OK == 0 && NETDEV_TX_BUSY == 0x10);

void *rb_netdev_priv(const struct net_device *dev) { return netdev_priv(dev); }
unsigned int rb_netdev_num_tx_queues(const struct net_device *dev) { return dev->num_tx_queues; }

void rb_netdev_setup(struct net_device *dev, struct device *parent,
		     const struct net_device_ops *ops, const struct ethtool_ops *eops,
		     unsigned int max_mtu, bool tx_csum, bool rx_csum, bool tso4, bool tso6)
{
	SET_NETDEV_DEV(dev, parent);
	dev->netdev_ops = ops;
	dev->ethtool_ops = eops;
	dev->min_mtu = ETH_MIN_MTU;
	dev->max_mtu = max_mtu;
	dev->watchdog_timeo = 5 * HZ;
	dev->hw_features = NETIF_F_SG | NETIF_F_RXHASH | NETIF_F_HIGHDMA;
	if (tx_csum)
		dev->hw_features |= NETIF_F_IP_CSUM | NETIF_F_IPV6_CSUM;
	if (rx_csum)
		dev->hw_features |= NETIF_F_RXCSUM;
	/* Segmentation needs the checksum offload of the same family. */
	if (tso4 && tx_csum)
		dev->hw_features |= NETIF_F_TSO;
	if (tso6 && tx_csum)
		dev->hw_features |= NETIF_F_TSO6;
	/* A linearised TSO skb must fit one 16-bit descriptor length. */
	netif_set_tso_max_size(dev, U16_MAX);
	dev->features = dev->hw_features;
	dev->priv_flags |= IFF_UNICAST_FLT;
}

void rb_netdev_set_mac(struct net_device *dev, const u8 *mac) { eth_hw_addr_set(dev, mac); }
unsigned int rb_netdev_mtu(const struct net_device *dev) { return READ_ONCE(dev->mtu); }
bool rb_netdev_rx_csum_enabled(const struct net_device *dev)
{
	return READ_ONCE(dev->features) & NETIF_F_RXCSUM;
}
void rb_netdev_set_mtu(struct net_device *dev, unsigned int mtu) { WRITE_ONCE(dev->mtu, mtu); }
bool rb_netif_running(const struct net_device *dev) { return netif_running(dev); }
bool rb_netif_carrier_ok(const struct net_device *dev) { return netif_carrier_ok(dev); }
void rb_netif_stop_subqueue(struct net_device *dev, u16 q) { netif_stop_subqueue(dev, q); }
/*
 * A wake schedules the queue's qdisc. register_netdevice() attaches one
 * (noop_qdisc first; never NULL again) only after it has marked the device
 * registered, or not at all if registration fails, and a safe caller may
 * hold the device before, during or after that: a queue whose qdisc is
 * still NULL is skipped.
 */
static void rb_wake_txq(struct netdev_queue *txq)
{
	if (rcu_access_pointer(txq->qdisc))
		netif_tx_wake_queue(txq);
}

void rb_netif_wake_subqueue(struct net_device *dev, u16 q)
{
	rb_wake_txq(netdev_get_tx_queue(dev, q));
}

bool rb_netif_subqueue_stopped(struct net_device *dev, u16 q)
{
	return __netif_subqueue_stopped(dev, q);
}

void rb_netif_tx_disable(struct net_device *dev) { netif_tx_disable(dev); }
/* netif_tx_wake_all_queues(), queue by queue through rb_wake_txq(). */
void rb_netif_tx_wake_all_queues(struct net_device *dev)
{
	unsigned int i;

	for (i = 0; i < dev->num_tx_queues; i++)
		rb_wake_txq(netdev_get_tx_queue(dev, i));
}

void rb_netdev_tx_sent_queue(struct net_device *dev, u16 q, unsigned int bytes)
{
	netdev_tx_sent_queue(netdev_get_tx_queue(dev, q), bytes);
}

void rb_netdev_tx_completed_queue(struct net_device *dev, u16 q, unsigned int pkts,
				  unsigned int bytes)
{
	netdev_tx_completed_queue(netdev_get_tx_queue(dev, q), pkts, bytes);
}

void rb_netdev_tx_reset_queue(struct net_device *dev, u16 q)
{
	netdev_tx_reset_queue(netdev_get_tx_queue(dev, q));
}

bool rb_netdev_xmit_more(void) { return netdev_xmit_more(); }

unsigned long rb_netdev_trans_start_age_ms(struct net_device *dev, u16 q)
{
	return jiffies_to_msecs(jiffies - READ_ONCE(netdev_get_tx_queue(dev, q)->trans_start));
}

int rb_netdev_set_real_num_queues(struct net_device *dev, unsigned int n)
{
	int err = netif_set_real_num_tx_queues(dev, n);

	return err ? err : netif_set_real_num_rx_queues(dev, n);
}

/*
 * Per-queue statistics (netdev netlink qstats, net/netdev_queues.h). The
 * real counts are read without the RTNL lock by the Rust glue, which only
 * uses them to bound queue indices; the core calls the stat ops under RTNL,
 * where they are stable.
 */
unsigned int rb_netdev_real_num_rx_queues(const struct net_device *dev)
{
	return READ_ONCE(dev->real_num_rx_queues);
}

unsigned int rb_netdev_real_num_tx_queues(const struct net_device *dev)
{
	return READ_ONCE(dev->real_num_tx_queues);
}

/* Before register_netdev: the core reads stat_ops without a lock. */
void rb_netdev_set_stat_ops(struct net_device *dev, const struct netdev_stat_ops *ops)
{
	dev->stat_ops = ops;
}

bool rb_napi_schedule(struct napi_struct *napi) { return napi_schedule(napi); }
void rb_local_bh_disable(void) { local_bh_disable(); }
void rb_local_bh_enable(void) { local_bh_enable(); }
struct net_device *rb_napi_dev(struct napi_struct *napi) { return napi->dev; }
void rb_netif_napi_del(struct napi_struct *napi) { netif_napi_del(napi); }

void rb_dev_kfree_skb_any(struct sk_buff *skb) { dev_kfree_skb_any(skb); }
unsigned int rb_skb_len(const struct sk_buff *skb) { return skb->len; }
unsigned int rb_skb_headlen(const struct sk_buff *skb) { return skb_headlen(skb); }
unsigned int rb_skb_nr_frags(const struct sk_buff *skb) { return skb_shinfo(skb)->nr_frags; }
u16 rb_skb_queue_mapping(const struct sk_buff *skb) { return skb_get_queue_mapping(skb); }
int rb_skb_linearize(struct sk_buff *skb) { return skb_linearize(skb); }
int rb_skb_padto(struct sk_buff *skb, unsigned int len) { return skb_put_padto(skb, len); }
int rb_skb_checksum_help(struct sk_buff *skb) { return skb_checksum_help(skb); }
void rb_skb_tx_timestamp(struct sk_buff *skb) { skb_tx_timestamp(skb); }

bool rb_skb_is_gso(const struct sk_buff *skb) { return skb_is_gso(skb); }

int rb_skb_tx_csum(struct sk_buff *skb, u8 *l3, u8 *l4, u8 *l3_off, u8 *l3_len, u8 *l4_len,
		   u16 *mss)
{
	u8 proto;
	int off;

	*mss = 0;
	if (skb_is_gso(skb)) {
		/* Only TCP segmentation is offered (NETIF_F_TSO/TSO6). */
		if (!(skb_shinfo(skb)->gso_type & (SKB_GSO_TCPV4 | SKB_GSO_TCPV6)))
			return -1;
		*mss = skb_shinfo(skb)->gso_size;
	} else if (skb->ip_summed != CHECKSUM_PARTIAL) {
		return 0;
	}
	off = skb_network_offset(skb);
	if (off < 0 || off > 255 || skb_network_header_len(skb) > 255)
		return -1;
	switch (vlan_get_protocol(skb)) {
	case htons(ETH_P_IP):
		*l3 = 4;
		proto = ip_hdr(skb)->protocol;
		break;
	case htons(ETH_P_IPV6):
		*l3 = 6;
		proto = ipv6_hdr(skb)->nexthdr;
		break;
	default:
		return -1;
	}
	if (proto == IPPROTO_TCP && skb->csum_offset == offsetof(struct tcphdr, check))
		*l4_len = tcp_hdrlen(skb) / 4;
	else if (*mss)
		return -1;
	else if (proto == IPPROTO_UDP && skb->csum_offset == offsetof(struct udphdr, check))
		*l4_len = sizeof(struct udphdr) / 4;
	else
		return -1;
	*l4 = proto;
	*l3_off = off;
	*l3_len = skb_network_header_len(skb);
	return 1;
}

dma_addr_t rb_skb_map_head(struct device *dev, struct sk_buff *skb)
{
	return dma_map_single(dev, skb->data, skb_headlen(skb), DMA_TO_DEVICE);
}

dma_addr_t rb_skb_map_frag(struct device *dev, struct sk_buff *skb, unsigned int i,
			   unsigned int *len)
{
	const skb_frag_t *frag = &skb_shinfo(skb)->frags[i];

	*len = skb_frag_size(frag);
	return skb_frag_dma_map(dev, frag, 0, *len, DMA_TO_DEVICE);
}

void rb_dma_unmap_page(struct device *dev, dma_addr_t addr, size_t size,
		       enum dma_data_direction dir)
{
	dma_unmap_page(dev, addr, size, dir);
}

#define RB_RX_HEADROOM NET_SKB_PAD
#define RB_RX_BUF_LEN (PAGE_SIZE - RB_RX_HEADROOM - \
		       SKB_DATA_ALIGN(sizeof(struct skb_shared_info)))

unsigned int rb_rx_buf_len(void) { return RB_RX_BUF_LEN; }

struct page *rb_rx_page_alloc(struct device *dev, dma_addr_t *dma)
{
	struct page *page = dev_alloc_page();

	if (!page)
		return NULL;
	*dma = dma_map_page(dev, page, RB_RX_HEADROOM, RB_RX_BUF_LEN, DMA_FROM_DEVICE);
	if (dma_mapping_error(dev, *dma)) {
		__free_page(page);
		return NULL;
	}
	return page;
}

void rb_rx_page_free(struct device *dev, struct page *page, dma_addr_t dma)
{
	dma_unmap_page(dev, dma, RB_RX_BUF_LEN, DMA_FROM_DEVICE);
	__free_page(page);
}

struct sk_buff *rb_rx_page_build_skb(struct device *dev, struct page *page, dma_addr_t dma,
				     unsigned int off, unsigned int len)
{
	struct sk_buff *skb;

	dma_unmap_page(dev, dma, RB_RX_BUF_LEN, DMA_FROM_DEVICE);
	skb = napi_build_skb(page_address(page), PAGE_SIZE);
	if (!skb) {
		__free_page(page);
		return NULL;
	}
	skb_reserve(skb, RB_RX_HEADROOM + off);
	skb_put(skb, len);
	return skb;
}

struct sk_buff *rb_rx_page_copy_skb(struct napi_struct *napi, struct device *dev,
				    struct page *page, dma_addr_t dma, unsigned int off,
				    unsigned int len)
{
	struct sk_buff *skb;

	dma_sync_single_for_cpu(dev, dma + off, len, DMA_FROM_DEVICE);
	skb = napi_alloc_skb(napi, len);
	if (skb)
		skb_put_data(skb, page_address(page) + RB_RX_HEADROOM + off, len);
	/* The buffer goes back to the device, still mapped. */
	dma_sync_single_for_device(dev, dma + off, len, DMA_FROM_DEVICE);
	return skb;
}

void rb_rx_page_add_frag(struct device *dev, struct sk_buff *skb, struct page *page,
			 dma_addr_t dma, unsigned int len)
{
	dma_unmap_page(dev, dma, RB_RX_BUF_LEN, DMA_FROM_DEVICE);
	skb_add_rx_frag(skb, skb_shinfo(skb)->nr_frags, page, RB_RX_HEADROOM, len, PAGE_SIZE);
}

void rb_skb_rx_finish(struct sk_buff *skb, struct net_device *dev, u16 queue, u32 hash,
		      bool hash_l4, bool csum_ok)
{
	skb->protocol = eth_type_trans(skb, dev);
	skb_record_rx_queue(skb, queue);
	/* "ethtool -K rxhash off" turns the hash off, as in the C drivers. */
	if (READ_ONCE(dev->features) & NETIF_F_RXHASH)
		skb_set_hash(skb, hash, hash_l4 ? PKT_HASH_TYPE_L4 : PKT_HASH_TYPE_L3);
	if (csum_ok)
		skb->ip_summed = CHECKSUM_UNNECESSARY;
	else
		skb_checksum_none_assert(skb);
}

void rb_ethtool_drvinfo(struct net_device *dev, struct ethtool_drvinfo *info,
			const char *driver)
{
	strscpy(info->driver, driver, sizeof(info->driver));
	if (dev->dev.parent)
		strscpy(info->bus_info, dev_name(dev->dev.parent), sizeof(info->bus_info));
}

void rb_timer_setup(struct timer_list *timer, void (*fn)(struct timer_list *))
{
	timer_setup(timer, fn, 0);
}

unsigned long rb_jiffies(void) { return jiffies; }
u64 rb_jiffies64_ms(void) { return jiffies64_to_msecs(get_jiffies_64()); }

static void rb_dim_work(struct work_struct *work)
{
	struct dim *dim = container_of(work, struct dim, work);

	/* The new profile is read at the next unmask; start measuring again. */
	dim->state = DIM_START_MEASURE;
}

void rb_dim_init(struct dim *dim)
{
	memset(dim, 0, sizeof(*dim));
	INIT_WORK(&dim->work, rb_dim_work);
	dim->mode = DIM_CQ_PERIOD_MODE_START_FROM_EQE;
	dim->profile_ix = 0;
}

void rb_dim_update(struct dim *dim, u16 event_ctr, u64 packets, u64 bytes)
{
	struct dim_sample sample;

	dim_update_sample(event_ctr, packets, bytes, &sample);
	net_dim(dim, sample);
}

u16 rb_dim_rx_usecs(struct dim *dim)
{
	return net_dim_get_rx_moderation(dim->mode, READ_ONCE(dim->profile_ix)).usec;
}

void rb_dim_cancel(struct dim *dim) { cancel_work_sync(&dim->work); }

bool rb_flush_work(struct work_struct *work) { return flush_work(work); }

void rb_u64_stats_init(struct u64_stats_sync *syncp) { u64_stats_init(syncp); }
void rb_u64_stats_update_begin(struct u64_stats_sync *syncp) { u64_stats_update_begin(syncp); }
void rb_u64_stats_update_end(struct u64_stats_sync *syncp) { u64_stats_update_end(syncp); }
unsigned int rb_u64_stats_fetch_begin(const struct u64_stats_sync *syncp)
{
	return u64_stats_fetch_begin(syncp);
}
bool rb_u64_stats_fetch_retry(const struct u64_stats_sync *syncp, unsigned int start)
{
	return u64_stats_fetch_retry(syncp, start);
}
u64 rb_u64_stats_read(const u64_stats_t *p) { return u64_stats_read(p); }
void rb_u64_stats_add(u64_stats_t *p, u64 v) { u64_stats_add(p, v); }
