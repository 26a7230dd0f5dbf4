// Command netpol-smoke is the kit's test harness for the network policy enforcer that
// the kindnetd stand-in image carries (/bin/netpol, from sigs.k8s.io/kube-network-policies).
// It lets netpol-smoke.sh prove enforcement inside one throwaway container, no cluster:
//
//	netpol-smoke api -addr 127.0.0.1:6443 -sa DIR PATH=FILE...
//	    a fake API server over TLS: GET PATH answers FILE's list, a watch stays open and
//	    silent, writes (events) are accepted; DIR gets the service account files
//	    (ca.crt, token, namespace) that client-go's in-cluster config reads
//	netpol-smoke serve ADDR         accept TCP connections and answer "ok"
//	netpol-smoke dial ADDR TIMEOUT  exit 0 when ADDR answers "ok" within TIMEOUT
//
// Only the standard library.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	log.SetFlags(log.Lmicroseconds)
	log.SetPrefix("netpol-smoke: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: netpol-smoke api|serve|dial ...")
	}
	var err error
	switch os.Args[1] {
	case "api":
		err = api(os.Args[2:])
	case "serve":
		err = serve(os.Args[2:])
	case "dial":
		err = dial(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		log.Fatal(err)
	}
}

func api(args []string) error {
	fs := flag.NewFlagSet("api", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:6443", "listen address (an IP: it is the certificate's only name)")
	saDir := fs.String("sa", "/var/run/secrets/kubernetes.io/serviceaccount", "where the service account files go")
	fs.Parse(args)
	lists := map[string][]byte{}
	for _, a := range fs.Args() {
		path, file, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("%q is not PATH=FILE", a)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		lists[path] = data
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	cert, caPEM, err := selfSigned(net.ParseIP(host))
	if err != nil {
		return err
	}
	const token = "kit-netpol-smoke"
	if err := os.MkdirAll(*saDir, 0o755); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"ca.crt": caPEM, "token": []byte(token), "namespace": []byte("kube-system")} {
		if err := os.WriteFile(filepath.Join(*saDir, name), data, 0o644); err != nil {
			return err
		}
	}

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet { // the enforcer's event recorder
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			w.Write(body)
			return
		}
		list, ok := lists[r.URL.Path]
		if !ok {
			log.Printf("GET %s: not served", r.URL)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"%s not served"}`, r.URL.Path)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1" {
			// nothing changes: hold the watch open until the client goes
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		log.Printf("GET %s", r.URL)
		w.Write(list)
	})
	srv := &http.Server{Addr: *addr, Handler: handler, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	log.Printf("fake API on https://%s, service account files in %s", *addr, *saDir)
	return srv.ListenAndServeTLS("", "")
}

// selfSigned: one certificate that is its own CA, valid for ip.
func selfSigned(ip net.IP) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kit-netpol-smoke"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{ip},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func serve(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: serve ADDR")
	}
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		fmt.Fprintln(c, "ok")
		c.Close()
	}
}

func dial(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: dial ADDR TIMEOUT")
	}
	timeout, err := time.ParseDuration(args[1])
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", args[0], timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "ok" {
		return fmt.Errorf("%s answered %q", args[0], line)
	}
	return nil
}
