package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// serveToPods makes the API server reachable from pods of a real node, as
// the operator installed by its chart needs: it listens on addr (an address
// of this machine that the pod network routes to, never 0.0.0.0), advertises
// it as the kubernetes Service's endpoint, and serves a certificate that
// names the Service too (in-cluster clients dial its cluster IP). envtest
// would make a certificate for localhost and addr only, so this writes the
// serving certificate, its CA and the service-account signing key into the
// certificate directory envtest then uses as it is. The ServiceAccount
// admission plugin, which envtest turns off, is on: pods get their tokens.
func serveToPods(env *envtest.Environment, addr, certDir string) error {
	ip := net.ParseIP(addr)
	if ip == nil || ip.IsUnspecified() {
		return fmt.Errorf("--serve-to-pods %q: want one address of this machine", addr)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return fmt.Errorf("--serve-to-pods %s: %w", addr, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	if err := os.RemoveAll(certDir); err != nil {
		return err
	}
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return err
	}
	caKey, caCert, err := newCA()
	if err != nil {
		return err
	}
	names := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	// The first address of the Service range (10.96.0.0/12) is the kubernetes Service's.
	ips := []net.IP{net.IPv4(127, 0, 0, 1), ip, net.IPv4(10, 96, 0, 1)}
	serving, servingKey, err := newServingCert(caKey, caCert, names, ips)
	if err != nil {
		return err
	}
	saKey, saCert, err := newCA()
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"apiserver.crt": serving, "apiserver.key": servingKey,
		"sa-signer.crt": pemBlock("CERTIFICATE", saCert.Raw), "sa-signer.key": pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(certDir, name), data, 0o600); err != nil {
			return err
		}
	}
	api := env.ControlPlane.GetAPIServer()
	api.CertDir = certDir
	api.Address, api.Port = addr, strconv.Itoa(port)
	api.CA = pemBlock("CERTIFICATE", caCert.Raw)
	args := api.Configure()
	args.Set("advertise-address", addr)
	args.Set("disable-admission-plugins", "")
	return nil
}

func newCA() (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "crm-local-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}

func newServingCert(caKey *rsa.PrivateKey, ca *x509.Certificate, names []string, ips []net.IP) (certPEM, keyPEM []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano() + 1), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: names, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)), nil
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}
