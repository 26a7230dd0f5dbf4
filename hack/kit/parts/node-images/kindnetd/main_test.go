package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"
)

// fakeNet records commands and answers like a node with no routes and no nat chain yet.
type fakeNet struct {
	calls  []string
	routes map[string]string // "-4 10.244.1.0/24" -> "10.244.1.0/24 via 172.18.0.3 dev eth0"
	chains map[string][]string
	jumps  map[string]bool
}

func newFakeNet() *fakeNet {
	return &fakeNet{routes: map[string]string{}, chains: map[string][]string{}, jumps: map[string]bool{}}
}

func (f *fakeNet) run(name string, args ...string) (string, error) {
	line := name + " " + strings.Join(args, " ")
	f.calls = append(f.calls, line)
	switch name {
	case "ip":
		fam, verb := args[0], args[2]
		switch verb {
		case "show": // ip -4 route show exact CIDR
			return f.routes[fam+" "+args[4]], nil
		case "replace": // ip -4 route replace CIDR via GW
			f.routes[fam+" "+args[3]] = args[3] + " via " + args[5] + " dev eth0 \n"
			return "", nil
		}
	case "iptables", "ip6tables":
		op, rest := args[4], args[5:]
		key := name
		switch op {
		case "-S":
			rules, ok := f.chains[key]
			if !ok {
				return "iptables: No chain/target/match by that name.", errExit
			}
			return strings.Join(append([]string{"-N " + masqChain}, rules...), "\n") + "\n", nil
		case "-N":
			f.chains[key] = []string{}
			return "", nil
		case "-F":
			f.chains[key] = []string{}
			return "", nil
		case "-A":
			if rest[0] == masqChain {
				f.chains[key] = append(f.chains[key], "-A "+strings.Join(rest, " "))
			} else {
				f.jumps[key+" "+strings.Join(rest, " ")] = true
			}
			return "", nil
		case "-C":
			if f.jumps[key+" "+strings.Join(rest, " ")] {
				return "", nil
			}
			return "", errExit
		}
	}
	return "", nil
}

type exitErr struct{}

func (exitErr) Error() string { return "exit status 1" }

var errExit = exitErr{}

func nodesJSON(t *testing.T) []node {
	t.Helper()
	raw := `{"metadata":{"resourceVersion":"42"},"items":[
	 {"metadata":{"name":"kind-control-plane"},"spec":{"podCIDR":"10.244.0.0/24","podCIDRs":["10.244.0.0/24"]},
	  "status":{"addresses":[{"type":"InternalIP","address":"172.18.0.2"},{"type":"Hostname","address":"kind-control-plane"}]}},
	 {"metadata":{"name":"kind-worker"},"spec":{"podCIDR":"10.244.1.0/24","podCIDRs":["10.244.1.0/24"]},
	  "status":{"addresses":[{"type":"InternalIP","address":"172.18.0.3"}]}},
	 {"metadata":{"name":"kind-worker2"},"spec":{},
	  "status":{"addresses":[{"type":"InternalIP","address":"172.18.0.4"}]}}]}`
	var list nodeList
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func TestReconcileWritesConfigRoutesAndMasquerade(t *testing.T) {
	dir := t.TempDir()
	f := newFakeNet()
	r, err := newReconciler("172.18.0.2", "10.244.0.0/16", dir, f.run)
	if err != nil {
		t.Fatal(err)
	}
	r.mtu = 1500
	if err := r.reconcile(nodesJSON(t)); err != nil {
		t.Fatal(err)
	}

	var conf struct {
		CNIVersion string           `json:"cniVersion"`
		Plugins    []map[string]any `json:"plugins"`
	}
	data, err := os.ReadFile(filepath.Join(dir, conflistName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		t.Fatalf("conflist is not JSON: %v\n%s", err, data)
	}
	if len(conf.Plugins) != 2 || conf.Plugins[0]["type"] != "ptp" || conf.Plugins[1]["type"] != "portmap" {
		t.Fatalf("plugins: %s", data)
	}
	for _, want := range []string{`"subnet": "10.244.0.0/24"`, `"dst": "0.0.0.0/0"`, `"mtu": 1500`, `"portMappings": true`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("conflist lacks %s:\n%s", want, data)
		}
	}
	if got := f.routes["-4 10.244.1.0/24"]; !strings.Contains(got, "via 172.18.0.3 ") {
		t.Errorf("route to kind-worker: %q", got)
	}
	if len(f.routes) != 1 {
		t.Errorf("routes for nodes without a podCIDR or for this node: %v", f.routes)
	}
	wantChain := []string{"-A " + masqChain + " -d 10.244.0.0/16 -j RETURN", "-A " + masqChain + " -j MASQUERADE"}
	if strings.Join(f.chains["iptables"], "|") != strings.Join(wantChain, "|") {
		t.Errorf("chain: %q", f.chains["iptables"])
	}
	if len(f.jumps) != 1 || f.chains["ip6tables"] != nil {
		t.Errorf("jumps %v, ip6tables %v", f.jumps, f.chains["ip6tables"])
	}

	// A second pass with nothing changed changes nothing.
	before := len(f.calls)
	if err := r.reconcile(nodesJSON(t)); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.calls[before:] {
		if strings.Contains(c, " replace ") || strings.Contains(c, " -A ") || strings.Contains(c, " -F ") || strings.Contains(c, " -N ") {
			t.Errorf("second pass changed something: %s", c)
		}
	}
}

func TestDualStackConflist(t *testing.T) {
	r, err := newReconciler("fc00:f853:ccd:e793::2", "10.244.0.0/16,fd00:10:244::/56", t.TempDir(), newFakeNet().run)
	if err != nil {
		t.Fatal(err)
	}
	data, err := r.conflist([]string{"10.244.0.0/24", "fd00:10:244::/64"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"dst": "0.0.0.0/0"`, `"dst": "::/0"`, `"subnet": "fd00:10:244::/64"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("conflist lacks %s:\n%s", want, data)
		}
	}
}

func TestBadInputs(t *testing.T) {
	for _, c := range [][2]string{{"", "10.244.0.0/16"}, {"172.18.0.2", ""}, {"172.18.0.2", "10.244.0.0"}} {
		if _, err := newReconciler(c[0], c[1], t.TempDir(), newFakeNet().run); err == nil {
			t.Errorf("HOST_IP=%q POD_SUBNET=%q accepted", c[0], c[1])
		}
	}
}

func TestAPIClientListsAndWatches(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" || r.URL.Path != "/api/v1/nodes" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		if r.URL.Query().Get("watch") == "true" {
			if r.URL.Query().Get("resourceVersion") != "42" {
				t.Errorf("watch from %q", r.URL.Query().Get("resourceVersion"))
			}
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
			w.Write([]byte(`{"type":"MODIFIED","object":{}}` + "\n"))
			w.(http.Flusher).Flush()
			<-r.Context().Done() // a real watch stays open
			return
		}
		w.Write([]byte(`{"metadata":{"resourceVersion":"42"},"items":[{"metadata":{"name":"n1"}}]}`))
	}))
	defer srv.Close()
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("s3cret\n"), 0o600)
	c := newAPIClient(srv.URL, token, srv.Client().Transport.(*http.Transport).TLSClientConfig)

	list, err := c.listNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Metadata.Name != "n1" || list.Metadata.ResourceVersion != "42" {
		t.Fatalf("list: %+v", list)
	}
	start := time.Now()
	if err := c.waitForNodeChange(context.Background(), "42", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("watch returned after %s, not at the first event", time.Since(start))
	}

	os.WriteFile(token, []byte("wrong"), 0o600)
	if _, err := c.listNodes(context.Background()); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("bad token: %v", err)
	}
}

// The DaemonSet manifest goes through kind's installcni action: a Go text/template with
// .PodSubnet when it has kind's marker, then a JSON patch appending to the first
// container's env. KIT_CNI_MANIFEST names the file (the kit's build sets it).
func TestCNIManifestRendersLikeKind(t *testing.T) {
	path := os.Getenv("KIT_CNI_MANIFEST")
	if path == "" {
		t.Skip("KIT_CNI_MANIFEST not set")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, marker := range []string{"would you kindly template this file", "would you kindly patch this file"} {
		if !strings.Contains(string(raw), marker) {
			t.Errorf("no %q line: kind would skip that step", marker)
		}
	}
	tpl, err := template.New("cni-manifest").Parse(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := tpl.Execute(&out, &struct{ PodSubnet string }{"10.244.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"value: 10.244.0.0/16", "name: HOST_IP", "kind: DaemonSet", "resources: [\"nodes\"]"} {
		if !strings.Contains(s, want) {
			t.Errorf("rendered manifest lacks %q", want)
		}
	}
	if strings.Contains(s, "{{") {
		t.Errorf("template left unrendered")
	}
}

// The DaemonSet's second container enforces NetworkPolicies from the same image, with the
// API access upstream's kube-network-policies install.yaml grants; kindnet-cni stays the
// first container, the one kind's patch gives CONTROL_PLANE_ENDPOINT.
func TestCNIManifestEnforcesNetworkPolicies(t *testing.T) {
	path := os.Getenv("KIT_CNI_MANIFEST")
	if path == "" {
		t.Skip("KIT_CNI_MANIFEST not set")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	cni, netpol := strings.Index(s, "- name: kindnet-cni"), strings.Index(s, "- name: kube-network-policies")
	if cni < 0 || netpol < cni {
		t.Fatalf("containers: kindnet-cni at %d, kube-network-policies at %d; kindnet-cni must come first", cni, netpol)
	}
	second := s[netpol:]
	if end := strings.Index(second, "\n      volumes:"); end > 0 {
		second = second[:end]
	}
	for _, want := range []string{"image: @KINDNETD_IMAGE@", `command: ["/bin/netpol"]`, "--hostname-override=$(MY_NODE_NAME)",
		"fieldPath: spec.nodeName", "privileged: true", "mountPath: /var/run/nri"} {
		if !strings.Contains(second, want) {
			t.Errorf("kube-network-policies container lacks %q", want)
		}
	}
	for _, want := range []string{`resources: ["pods", "namespaces"]`, `resources: ["networkpolicies"]`, `apiGroups: ["networking.k8s.io"]`} {
		if !strings.Contains(s, want) {
			t.Errorf("ClusterRole lacks %q", want)
		}
	}
	if strings.Count(s, "image: ") != 2 {
		t.Errorf("want exactly two image lines (both the kindnetd image the node preloads), got %d", strings.Count(s, "image: "))
	}
}
