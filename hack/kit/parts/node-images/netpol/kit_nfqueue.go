// The kit's one addition to sigs.k8s.io/kube-network-policies, dropped into a build-time
// copy of its pkg/networkpolicy by node-images.sh, which also wraps every queue
// expression the package puts in a rule in kitVerdict(...).
//
// Upstream hands packets to its nfqueue with nftables' native queue expression
// (kernel CONFIG_NFT_QUEUE). Some kernels, this project's CI sandboxes among them, lack
// it but have the xtables NFQUEUE target (CONFIG_NETFILTER_XT_TARGET_NFQUEUE) that
// iptables-nft reaches through nft_compat: the same queue, the same verdicts, another
// way into it. kitVerdict keeps upstream's expression where the kernel takes it and
// otherwise gives the equivalent NFQUEUE target.

package networkpolicy

import (
	"encoding/binary"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"k8s.io/klog/v2"
)

var (
	kitProbeOnce     sync.Once
	kitNativeQueueOK bool
)

// kitVerdict returns q itself when the kernel has the native queue expression, or the
// xtables NFQUEUE target with q's queue number and flags.
func kitVerdict(q *expr.Queue) expr.Any {
	kitProbeOnce.Do(func() {
		kitNativeQueueOK = kitProbeNativeQueue()
		if kitNativeQueueOK {
			klog.Info("kit: the kernel has the nftables queue expression; using it")
		} else {
			klog.Info("kit: the kernel lacks the nftables queue expression (CONFIG_NFT_QUEUE); using the xtables NFQUEUE target through nft_compat")
		}
	})
	if kitNativeQueueOK {
		return q
	}
	// struct xt_NFQ_info_v3 {__u16 queuenum; __u16 queues_total; __u16 flags;}, host byte
	// order, padded to XT_ALIGN (8); NFQ_FLAG_BYPASS and NFQ_FLAG_CPU_FANOUT have the
	// values of NFT_QUEUE_FLAG_BYPASS and NFT_QUEUE_FLAG_CPU_FANOUT.
	total := q.Total
	if total == 0 {
		total = 1
	}
	info := make(xt.Unknown, 8)
	binary.NativeEndian.PutUint16(info[0:], q.Num)
	binary.NativeEndian.PutUint16(info[2:], total)
	binary.NativeEndian.PutUint16(info[4:], uint16(q.Flag&(expr.QueueFlagBypass|expr.QueueFlagFanout)))
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}

// kitProbeNativeQueue adds a queue rule to a throwaway table, with no hook so no packet
// ever meets it, and removes the table in the same transaction: the kernel rejects the
// whole transaction when it has no queue expression.
func kitProbeNativeQueue() bool {
	nft, err := nftables.New()
	if err != nil {
		return false
	}
	table := &nftables.Table{Name: "kube-network-policies-kit-probe", Family: nftables.TableFamilyINet}
	nft.AddTable(table)
	chain := nft.AddChain(&nftables.Chain{Name: "probe", Table: table})
	nft.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: []expr.Any{&expr.Queue{Num: 65535, Total: 1}}})
	nft.DelTable(table)
	return nft.Flush() == nil
}
