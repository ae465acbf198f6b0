package main

// Minimal typed mirrors of the custom resources the chart renders, covering the fields it uses.
// Decoded strictly like the built-in kinds, so a misspelled or misplaced field fails here
// instead of being pruned silently by the API server (CRDs with structural schemas drop unknown
// fields without an error).

import (
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// === ServiceMonitor (monitoring.coreos.com/v1) ===

// ServiceMonitor tells the Prometheus operator which Services' endpoints to scrape.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ServiceMonitorSpec `json:"spec"`
}

// ServiceMonitorSpec is the subset of the operator's spec the chart uses.
type ServiceMonitorSpec struct {
	Selector          metav1.LabelSelector `json:"selector"`
	Endpoints         []Endpoint           `json:"endpoints"`
	NamespaceSelector *struct {
		Any        bool     `json:"any,omitempty"`
		MatchNames []string `json:"matchNames,omitempty"`
	} `json:"namespaceSelector,omitempty"`
	JobLabel string `json:"jobLabel,omitempty"`
}

// Endpoint is one scraped port.
type Endpoint struct {
	Port          string             `json:"port"`
	Path          string             `json:"path,omitempty"`
	Scheme        string             `json:"scheme,omitempty"`
	Interval      string             `json:"interval,omitempty"`
	ScrapeTimeout string             `json:"scrapeTimeout,omitempty"`
	Authorization *SafeAuthorization `json:"authorization,omitempty"`
	TLSConfig     *TLSConfig         `json:"tlsConfig,omitempty"`
}

// SafeAuthorization is an Authorization header taken from a Secret.
type SafeAuthorization struct {
	Type        string                    `json:"type,omitempty"`
	Credentials *corev1.SecretKeySelector `json:"credentials,omitempty"`
}

// TLSConfig is how the scrape checks the target's certificate.
type TLSConfig struct {
	InsecureSkipVerify bool                      `json:"insecureSkipVerify,omitempty"`
	ServerName         string                    `json:"serverName,omitempty"`
	CA                 *SecretOrConfigMap        `json:"ca,omitempty"`
	Cert               *SecretOrConfigMap        `json:"cert,omitempty"`
	KeySecret          *corev1.SecretKeySelector `json:"keySecret,omitempty"`
}

// SecretOrConfigMap names a key of a Secret or of a ConfigMap.
type SecretOrConfigMap struct {
	Secret    *corev1.SecretKeySelector    `json:"secret,omitempty"`
	ConfigMap *corev1.ConfigMapKeySelector `json:"configMap,omitempty"`
}

func (m *ServiceMonitor) check() error {
	if len(m.Spec.Endpoints) == 0 {
		return errors.New("spec.endpoints is empty")
	}
	for i, e := range m.Spec.Endpoints {
		if e.Port == "" {
			return fmt.Errorf("spec.endpoints[%d].port is empty", i)
		}
		if e.Scheme != "" && e.Scheme != "http" && e.Scheme != "https" {
			return fmt.Errorf("spec.endpoints[%d].scheme %q is neither http nor https", i, e.Scheme)
		}
		for _, d := range []string{e.Interval, e.ScrapeTimeout} {
			if d != "" {
				if _, err := time.ParseDuration(d); err != nil {
					return fmt.Errorf("spec.endpoints[%d]: %w", i, err)
				}
			}
		}
	}
	return nil
}

// === PrometheusRule (monitoring.coreos.com/v1) ===

// PrometheusRule holds alerting and recording rules.
type PrometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []RuleGroup `json:"groups"`
	} `json:"spec"`
}

// RuleGroup is a named list of rules evaluated together.
type RuleGroup struct {
	Name     string `json:"name"`
	Interval string `json:"interval,omitempty"`
	Limit    *int   `json:"limit,omitempty"`
	Rules    []Rule `json:"rules"`
}

// Rule is an alerting (alert) or recording (record) rule.
type Rule struct {
	Alert         string            `json:"alert,omitempty"`
	Record        string            `json:"record,omitempty"`
	Expr          string            `json:"expr"`
	For           string            `json:"for,omitempty"`
	KeepFiringFor string            `json:"keep_firing_for,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

func (r *PrometheusRule) check() error {
	if len(r.Spec.Groups) == 0 {
		return errors.New("spec.groups is empty")
	}
	names := map[string]bool{}
	for _, g := range r.Spec.Groups {
		if g.Name == "" || names[g.Name] {
			return fmt.Errorf("group name %q is empty or repeated", g.Name)
		}
		names[g.Name] = true
		for i, rule := range g.Rules {
			if (rule.Alert == "") == (rule.Record == "") {
				return fmt.Errorf("group %s rule %d: set exactly one of alert and record", g.Name, i)
			}
			if rule.Expr == "" {
				return fmt.Errorf("group %s rule %d: expr is empty", g.Name, i)
			}
		}
	}
	return nil
}

// === Certificate (cert-manager.io/v1) ===

// Certificate asks cert-manager for a key pair in a Secret.
type Certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              CertificateSpec `json:"spec"`
}

// CertificateSpec is the subset of cert-manager's spec the chart uses.
type CertificateSpec struct {
	SecretName  string   `json:"secretName"`
	CommonName  string   `json:"commonName,omitempty"`
	DNSNames    []string `json:"dnsNames,omitempty"`
	Usages      []string `json:"usages,omitempty"`
	Duration    string   `json:"duration,omitempty"`
	RenewBefore string   `json:"renewBefore,omitempty"`
	IsCA        bool     `json:"isCA,omitempty"`
	PrivateKey  *struct {
		Algorithm      string `json:"algorithm,omitempty"`
		Size           int    `json:"size,omitempty"`
		Encoding       string `json:"encoding,omitempty"`
		RotationPolicy string `json:"rotationPolicy,omitempty"`
	} `json:"privateKey,omitempty"`
	IssuerRef struct {
		Name  string `json:"name"`
		Kind  string `json:"kind,omitempty"`
		Group string `json:"group,omitempty"`
	} `json:"issuerRef"`
}

var certUsages = map[string]bool{
	"signing": true, "digital signature": true, "content commitment": true,
	"key encipherment": true, "key agreement": true, "data encipherment": true,
	"cert sign": true, "crl sign": true, "encipher only": true, "decipher only": true,
	"any": true, "server auth": true, "client auth": true, "code signing": true,
	"email protection": true, "s/mime": true, "ipsec end system": true, "ipsec tunnel": true,
	"ipsec user": true, "timestamping": true, "ocsp signing": true, "microsoft sgc": true,
	"netscape sgc": true,
}

func (c *Certificate) check() error {
	s := c.Spec
	if s.SecretName == "" || s.IssuerRef.Name == "" {
		return errors.New("spec.secretName and spec.issuerRef.name are required")
	}
	if len(s.DNSNames) == 0 && s.CommonName == "" {
		return errors.New("names nothing (no dnsNames, no commonName)")
	}
	for _, u := range s.Usages {
		if !certUsages[u] {
			return fmt.Errorf("unknown usage %q", u)
		}
	}
	for _, d := range []string{s.Duration, s.RenewBefore} {
		if d != "" {
			if _, err := time.ParseDuration(d); err != nil {
				return err
			}
		}
	}
	if s.PrivateKey != nil {
		switch s.PrivateKey.Algorithm {
		case "", "RSA", "ECDSA", "Ed25519":
		default:
			return fmt.Errorf("unknown privateKey.algorithm %q", s.PrivateKey.Algorithm)
		}
	}
	return nil
}
