// Command kindnetd is the kit's stand-in for kind's kindnetd (docker.io/kindest/kindnetd),
// whose source no package registry serves. It does the three jobs kind's default CNI
// manifest expects from that image, on every node (DaemonSet, host network):
//
//   - writes /etc/cni/net.d/10-kindnet.conflist: ptp + host-local IPAM over this node's
//     podCIDR(s) + portmap, run by the plugins in the node image's /opt/cni/bin;
//   - routes every other node's podCIDR(s) via that node's InternalIP;
//   - masquerades traffic from pods to anything outside the pod network (iptables).
//
// Network policies, which the real one also enforces, are not this program's job: the
// DaemonSet's second container runs sigs.k8s.io/kube-network-policies (/bin/netpol in this
// image) for them.
//
// Inputs, as kind's manifest sets them: HOST_IP (downward API), POD_SUBNET (kind's
// networking.podSubnet, comma-separated when dual-stack), CONTROL_PLANE_ENDPOINT
// (host:port, patched in by kind so the API is reachable before kube-proxy runs).
//
// Only the standard library: the kit builds it offline in seconds.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

const (
	conflistName = "10-kindnet.conflist"
	// Our own nat chain; pods' traffic jumps here from POSTROUTING.
	masqChain = "KINDNET-MASQ"
	// How long one watch waits for a node change before a full re-sync, which also
	// repairs routes or rules something else removed.
	resync = 30 * time.Second
)

func main() {
	cniDir := flag.String("cni-dir", "/etc/cni/net.d", "where the CNI conflist is written")
	once := flag.Bool("once", false, "reconcile once and exit (tests)")
	nodesFile := flag.String("nodes-file", "", "read a NodeList from this JSON file instead of the API (tests)")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	r, err := newReconciler(os.Getenv("HOST_IP"), os.Getenv("POD_SUBNET"), *cniDir, execRun)
	if err != nil {
		log.Fatal(err)
	}
	if *nodesFile != "" {
		var list nodeList
		data, err := os.ReadFile(*nodesFile)
		if err == nil {
			err = json.Unmarshal(data, &list)
		}
		if err == nil {
			err = r.reconcile(list.Items)
		}
		if err != nil {
			log.Fatal(err)
		}
		return
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	api, err := inCluster(os.Getenv("CONTROL_PLANE_ENDPOINT"))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("kindnetd (kit stand-in): API %s, host %s, pod subnets %v, MTU %d", api.base, r.hostIP, r.podSubnets, r.mtu)

	backoff := time.Second
	for ctx.Err() == nil {
		list, err := api.listNodes(ctx)
		if err == nil {
			err = r.reconcile(list.Items)
		}
		if err != nil {
			log.Printf("reconcile: %v (retry in %s)", err, backoff)
			sleep(ctx, backoff)
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		backoff = time.Second
		if *once {
			return
		}
		// A node joined, got its podCIDR or changed address: act at once, not at the next poll.
		if err := api.waitForNodeChange(ctx, list.Metadata.ResourceVersion, resync); err != nil && ctx.Err() == nil {
			log.Printf("watch nodes: %v", err)
			sleep(ctx, time.Second)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// The few Node fields this program reads.
type node struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		PodCIDR  string   `json:"podCIDR"`
		PodCIDRs []string `json:"podCIDRs"`
	} `json:"spec"`
	Status struct {
		Addresses []struct {
			Type    string `json:"type"`
			Address string `json:"address"`
		} `json:"addresses"`
	} `json:"status"`
}

type nodeList struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Items []node `json:"items"`
}

func (n *node) internalIPs() []string {
	var ips []string
	for _, a := range n.Status.Addresses {
		if a.Type == "InternalIP" {
			ips = append(ips, a.Address)
		}
	}
	return ips
}

func (n *node) podCIDRs() []string {
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs
	}
	if n.Spec.PodCIDR != "" {
		return []string{n.Spec.PodCIDR}
	}
	return nil
}

func isIPv6(s string) bool { return strings.Contains(s, ":") }

// runner runs a command and returns its standard output (iptables-nft writes warnings
// about the other backend to stderr; they must not count as rules); tests replace it.
type runner func(name string, args ...string) (string, error)

func execRun(name string, args ...string) (string, error) {
	var stderr strings.Builder
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

type reconciler struct {
	hostIP     string
	hostname   string
	podSubnets []string
	cniDir     string
	mtu        int
	run        runner
}

func newReconciler(hostIP, podSubnet, cniDir string, run runner) (*reconciler, error) {
	if net.ParseIP(hostIP) == nil {
		return nil, fmt.Errorf("HOST_IP %q is not an IP address (the manifest sets it from status.hostIP)", hostIP)
	}
	var subnets []string
	for _, s := range strings.Split(podSubnet, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, cidr, err := net.ParseCIDR(s); err != nil {
			return nil, fmt.Errorf("POD_SUBNET: %w", err)
		} else {
			subnets = append(subnets, cidr.String())
		}
	}
	if len(subnets) == 0 {
		return nil, errors.New("POD_SUBNET is empty (kind fills it from networking.podSubnet)")
	}
	r := &reconciler{hostIP: hostIP, podSubnets: subnets, cniDir: cniDir, run: run}
	r.hostname, _ = os.Hostname()
	// ptp veths get the node's MTU, as on kind; without eth0 the plugin's default applies.
	if eth0, err := net.InterfaceByName("eth0"); err == nil {
		r.mtu = eth0.MTU
	}
	return r, nil
}

func (r *reconciler) reconcile(nodes []node) error {
	var errs []error
	mine := false
	for i := range nodes {
		n := &nodes[i]
		ips := n.internalIPs()
		if slices.Contains(ips, r.hostIP) || (len(ips) == 0 && n.Metadata.Name == r.hostname) {
			mine = true
			errs = append(errs, r.writeConflist(n))
			continue
		}
		for _, cidr := range n.podCIDRs() {
			gw := ""
			for _, ip := range ips {
				if isIPv6(ip) == isIPv6(cidr) {
					gw = ip
					break
				}
			}
			if gw == "" {
				log.Printf("node %s: no InternalIP of the family of %s; no route", n.Metadata.Name, cidr)
				continue
			}
			errs = append(errs, r.ensureRoute(cidr, gw))
		}
	}
	if !mine {
		log.Printf("no node has InternalIP %s yet", r.hostIP)
	}
	errs = append(errs, r.ensureMasquerade())
	return errors.Join(errs...)
}

// conflist renders the CNI configuration for this node's pod CIDRs.
func (r *reconciler) conflist(cidrs []string) ([]byte, error) {
	type (
		dst struct {
			Dst string `json:"dst"`
		}
		subnet struct {
			Subnet string `json:"subnet"`
		}
	)
	var routes []dst
	var ranges [][]subnet
	for _, c := range cidrs {
		def := "0.0.0.0/0"
		if isIPv6(c) {
			def = "::/0"
		}
		if !slices.Contains(routes, dst{def}) {
			routes = append(routes, dst{def})
		}
		ranges = append(ranges, []subnet{{c}})
	}
	ptp := map[string]any{
		"type":   "ptp",
		"ipMasq": false, // masquerading is ours, once per node, not one rule per pod
		"ipam": map[string]any{
			"type":    "host-local",
			"dataDir": "/run/cni-ipam-state",
			"routes":  routes,
			"ranges":  ranges,
		},
	}
	if r.mtu > 0 {
		ptp["mtu"] = r.mtu
	}
	out, err := json.MarshalIndent(map[string]any{
		"cniVersion": "0.3.1",
		"name":       "kindnet",
		"plugins": []any{
			ptp,
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}, "", "  ")
	return append(out, '\n'), err
}

func (r *reconciler) writeConflist(n *node) error {
	cidrs := n.podCIDRs()
	if len(cidrs) == 0 {
		log.Printf("node %s (this one) has no podCIDR yet", n.Metadata.Name)
		return nil
	}
	want, err := r.conflist(cidrs)
	if err != nil {
		return err
	}
	path := r.cniDir + "/" + conflistName
	if have, err := os.ReadFile(path); err == nil && string(have) == string(want) {
		return nil
	}
	// The runtime loads any *.conflist it sees: write under another name, then rename,
	// so it never reads half a file.
	tmp := path + ".tmp"
	if err := os.MkdirAll(r.cniDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, want, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	log.Printf("wrote %s for pod CIDRs %v", path, cidrs)
	return nil
}

func ipCmd(v6 bool, args ...string) []string {
	if v6 {
		return append([]string{"-6"}, args...)
	}
	return append([]string{"-4"}, args...)
}

func (r *reconciler) ensureRoute(cidr, gw string) error {
	v6 := isIPv6(cidr)
	out, err := r.run("ip", ipCmd(v6, "route", "show", "exact", cidr)...)
	if err != nil {
		return err
	}
	if strings.Contains(" "+out, " via "+gw+" ") {
		return nil
	}
	if _, err := r.run("ip", ipCmd(v6, "route", "replace", cidr, "via", gw)...); err != nil {
		return err
	}
	log.Printf("route %s via %s", cidr, gw)
	return nil
}

// iptables waits for the xtables lock (shared with kube-proxy and the kubelet through
// the /run/xtables.lock mount) instead of failing.
func (r *reconciler) iptables(v6 bool, args ...string) (string, error) {
	bin := "iptables"
	if v6 {
		bin = "ip6tables"
	}
	return r.run(bin, append([]string{"-w", "5", "-t", "nat"}, args...)...)
}

// ensureMasquerade: pod traffic leaving the pod network takes the node's address
// (the kind network knows nodes, not pods); pod-to-pod traffic keeps its source.
func (r *reconciler) ensureMasquerade() error {
	var errs []error
	for _, v6 := range []bool{false, true} {
		var subnets []string
		for _, s := range r.podSubnets {
			if isIPv6(s) == v6 {
				subnets = append(subnets, s)
			}
		}
		if len(subnets) > 0 {
			errs = append(errs, r.ensureMasqueradeFamily(v6, subnets))
		}
	}
	return errors.Join(errs...)
}

func (r *reconciler) ensureMasqueradeFamily(v6 bool, subnets []string) error {
	want := []string{"-N " + masqChain}
	for _, s := range subnets {
		want = append(want, "-A "+masqChain+" -d "+s+" -j RETURN")
	}
	want = append(want, "-A "+masqChain+" -j MASQUERADE")

	have, err := r.iptables(v6, "-S", masqChain)
	if err != nil {
		if _, err := r.iptables(v6, "-N", masqChain); err != nil {
			return err
		}
		have = "-N " + masqChain
	}
	if !sameRules(have, want) {
		// The order matters (MASQUERADE last): rebuild the whole chain.
		if _, err := r.iptables(v6, "-F", masqChain); err != nil {
			return err
		}
		for _, rule := range want[1:] {
			if _, err := r.iptables(v6, strings.Fields(rule)...); err != nil {
				return err
			}
		}
		log.Printf("nat chain %s: %d rule(s)", masqChain, len(want)-1)
	}
	for _, s := range subnets {
		jump := []string{"POSTROUTING", "-s", s, "-m", "comment", "--comment", "kindnet: pod traffic leaving the pod network", "-j", masqChain}
		if _, err := r.iptables(v6, append([]string{"-C"}, jump...)...); err == nil {
			continue
		}
		if _, err := r.iptables(v6, append([]string{"-A"}, jump...)...); err != nil {
			return err
		}
		log.Printf("nat POSTROUTING: %s -> %s", s, masqChain)
	}
	return nil
}

// sameRules compares `iptables -S` output with the wanted lines, ignoring spacing and
// comment lines.
func sameRules(have string, want []string) bool {
	var got []string
	for _, line := range strings.Split(have, "\n") {
		if line = strings.Join(strings.Fields(line), " "); line != "" && !strings.HasPrefix(line, "#") {
			got = append(got, line)
		}
	}
	return slices.Equal(got, want)
}
