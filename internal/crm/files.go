package crm

import (
	"path"
	"strings"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// Where each product keeps personal data in its files volume (uploads,
// attachments, pictures, sessions, logs), as paths of the volume's tar
// (its root is the volume's root; EspoCRM's three volumes are data/,
// custom/ and client-custom/). An anonymized copy of production leaves them
// out: the database is pseudonymized, and the files it points to must not
// carry the originals. Code and configuration (custom code, extensions,
// config files with the installation's secrets) stay, or the copy would not
// run. A missing upload makes a download fail or an image show as missing;
// every product keeps serving its pages (sources in each rule's Source).
type filesRule struct {
	// Pattern is a path prefix by segments; "*" matches one segment.
	Pattern string
	// Except are prefixes under Pattern kept all the same (code).
	Except []string
	Source string
}

const (
	srcSuiteUploads = "salesagility/SuiteCRM-Core@9df984e public/legacy/install/install_utils.php (upload_dir 'upload/'), include/SugarFields/Fields/Image/SugarFieldImage.php, modules/Import/sources/ImportCacheFiles.php, modules/InboundEmail/InboundEmail.php (cache/images), modules/Emails/Email.php (cache/modules/Emails), migrations Version20250127092820 (logs/legacy), config/packages/monolog.yaml (logs/prod); bitnami/containers@043f89c libsuitecrm.sh (SUITECRM_DATA_TO_PERSIST: the whole application)"
	srcEspoUploads  = "espocrm/espocrm@2cde9d9 application/Espo/Core/FileStorage/Storages/EspoUploadDir.php (data/upload/<id>), application/Espo/Core/Upgrades/ExtensionManager.php and UpgradeManager.php (data/upload/extensions, data/upload/upgrades), application/Espo/Core/Log/LogLoader.php (data/logs)"
	srcOdooFiles    = "odoo/docker@f7f6765 18.0/odoo.conf (data_dir = /var/lib/odoo); odoo/odoo odoo/tools/config.py (filestore/<db>, sessions, addons/<series>), odoo/addons/base/models/ir_attachment.py (_file_read returns empty content for a missing file)"
	srcTwentyFiles  = "twentyhq/twenty@8b8549e packages/twenty-server/src/engine/core-modules/file/interfaces/file-folder.interface.ts (FileFolder), file-storage.service.ts (workspace-<id>/<folder>, <workspace>/<app>/<folder>), drivers/local.driver.ts (FILE_NOT_FOUND)"
)

var personalFiles = map[crmv1alpha1.ProductName][]filesRule{
	crmv1alpha1.ProductSuiteCRM: {
		{Pattern: "public/legacy/upload", Except: []string{"public/legacy/upload/upgrades", "public/legacy/upload/index.html"}, Source: srcSuiteUploads},
		{Pattern: "public/legacy/cache/images", Source: srcSuiteUploads},
		{Pattern: "public/legacy/cache/modules/Emails", Source: srcSuiteUploads},
		{Pattern: "public/legacy/suitecrm.log", Source: srcSuiteUploads},
		{Pattern: "logs", Source: srcSuiteUploads},
	},
	crmv1alpha1.ProductEspoCRM: {
		{Pattern: "data/upload", Except: []string{"data/upload/extensions", "data/upload/upgrades"}, Source: srcEspoUploads},
		{Pattern: "data/logs", Source: srcEspoUploads},
	},
	// Odoo's filestore holds every attachment, the generated asset bundles
	// among them; the anonymization deletes the bundles' rows so that Odoo
	// builds them anew (a row whose file is missing would be served broken).
	crmv1alpha1.ProductOdoo: {
		{Pattern: "filestore", Source: srcOdooFiles},
		{Pattern: "sessions", Source: srcOdooFiles},
	},
	crmv1alpha1.ProductTwenty: twentyRules(),
}

// twentyRules: the personal folders of a workspace, in the older layout
// (workspace-<id>/<folder>) and the newer (<workspace>/<application>/<folder>).
func twentyRules() []filesRule {
	var rules []filesRule
	for _, folder := range []string{"attachment", "person-picture", "profile-picture", "core-picture", "files-field", "agent-chat", "workflow", "file"} {
		rules = append(rules,
			filesRule{Pattern: "*/" + folder, Source: srcTwentyFiles},
			filesRule{Pattern: "*/*/" + folder, Source: srcTwentyFiles})
	}
	return rules
}

// PersonalFile says whether name, a path of the product's files volume,
// holds personal data that an anonymized copy leaves out.
func PersonalFile(product crmv1alpha1.ProductName, name string) bool {
	name = strings.TrimSuffix(path.Clean("/" + name)[1:], "/")
	for _, r := range personalFiles[product] {
		if !underPattern(name, r.Pattern) {
			continue
		}
		kept := false
		for _, e := range r.Except {
			if name == e || strings.HasPrefix(name, e+"/") {
				kept = true
			}
		}
		if !kept {
			return true
		}
	}
	return false
}

// PersonalFilesRules lists the product's rules for the products reference.
func PersonalFilesRules(product crmv1alpha1.ProductName) (patterns []string, source string) {
	for _, r := range personalFiles[product] {
		p := r.Pattern + "/"
		if len(r.Except) > 0 {
			p += " (except " + strings.Join(r.Except, ", ") + ")"
		}
		patterns = append(patterns, p)
		source = r.Source
	}
	return patterns, source
}

// underPattern: name is pattern itself or below it, "*" matching one segment.
func underPattern(name, pattern string) bool {
	ns, ps := strings.Split(name, "/"), strings.Split(pattern, "/")
	if len(ns) < len(ps) {
		return false
	}
	for i, p := range ps {
		if p != "*" && p != ns[i] {
			return false
		}
	}
	return true
}

// personalFilesFact is the products reference's line on a product's personal files.
func personalFilesFact(product crmv1alpha1.ProductName) Fact {
	patterns, source := PersonalFilesRules(product)
	return Fact{"personal files", "an anonymized copy leaves out " + strings.Join(patterns, ", ") + " of the files volume; code and configuration come along", source}
}
