package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// apiClient reads nodes with the pod's service account, like client-go's in-cluster config.
type apiClient struct {
	base      string
	tokenFile string
	http      *http.Client
}

// inCluster prefers CONTROL_PLANE_ENDPOINT: the service address only works once
// kube-proxy has programmed this node, and kube-proxy's pods may wait for the network.
func inCluster(controlPlaneEndpoint string) (*apiClient, error) {
	ca, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s/ca.crt holds no certificate", saDir)
	}
	host := ""
	if controlPlaneEndpoint != "" {
		for i := 0; i < 5 && host == ""; i++ {
			if c, err := net.DialTimeout("tcp", controlPlaneEndpoint, time.Second); err == nil {
				c.Close()
				host = controlPlaneEndpoint
			} else {
				log.Printf("control plane %s not reachable yet: %v", controlPlaneEndpoint, err)
				time.Sleep(time.Duration(i) * time.Second)
			}
		}
	}
	if host == "" {
		h, p := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if h == "" || p == "" {
			return nil, fmt.Errorf("no API address: CONTROL_PLANE_ENDPOINT unreachable and KUBERNETES_SERVICE_HOST/PORT unset")
		}
		host = net.JoinHostPort(h, p)
	}
	return newAPIClient("https://"+host, saDir+"/token", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), nil
}

func newAPIClient(base, tokenFile string, tlsConfig *tls.Config) *apiClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConfig
	return &apiClient{base: base, tokenFile: tokenFile, http: &http.Client{Transport: tr}}
}

func (c *apiClient) get(ctx context.Context, path string, query url.Values) (*http.Response, error) {
	// Read the token each time: the kubelet rotates projected tokens in place.
	token, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path+"?"+query.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "kindnetd-kit")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	return resp, nil
}

func (c *apiClient) listNodes(ctx context.Context) (*nodeList, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.get(ctx, "/api/v1/nodes", url.Values{})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list nodeList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("decode node list: %w", err)
	}
	return &list, nil
}

// waitForNodeChange returns at the first node event after resourceVersion, or after
// timeout without one. An expired resourceVersion arrives as an ERROR event and also
// returns, so the caller lists again.
func (c *apiClient) waitForNodeChange(ctx context.Context, resourceVersion string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	q := url.Values{}
	q.Set("watch", "true")
	q.Set("resourceVersion", resourceVersion)
	q.Set("timeoutSeconds", fmt.Sprint(int(timeout.Seconds())))
	resp, err := c.get(ctx, "/api/v1/nodes", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var event struct {
		Type string `json:"type"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&event); err != nil && err != io.EOF {
		if ctx.Err() != nil {
			return nil // the server kept the watch open past its timeout; re-sync anyway
		}
		return fmt.Errorf("decode watch event: %w", err)
	}
	return nil
}
