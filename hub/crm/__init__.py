"""The CRM core: relations, contacts, projects, choices, activities, documents, access."""
